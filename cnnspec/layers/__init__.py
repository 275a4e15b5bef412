"""The layer table and the built-in layer vocabulary."""

from cnnspec.layers.registry import Arg, Attrs, LayerKind, ShapeError, all_kinds, lookup, register

__all__ = ["Arg", "Attrs", "LayerKind", "ShapeError", "all_kinds", "lookup", "register"]
