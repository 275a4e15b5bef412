"""The layer table and the built-in layer vocabulary."""

from cnnspec.layers.kind import Arg, Attrs, LayerKind, ShapeError
from cnnspec.layers.registry import all_kinds, lookup, register

__all__ = ["Arg", "Attrs", "LayerKind", "ShapeError", "all_kinds", "lookup", "register"]
