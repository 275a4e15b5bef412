"""cnnspec: a declarative language for CNN architectures, and its compiler.

    report = cnnspec.check("specs/resnet50.cnn")         # static: shapes, params, MACs
    model = cnnspec.compile("specs/resnet50.cnn", num_classes=10)   # torch.fx.GraphModule

Errors in a spec raise cnnspec.SpecError, which carries every diagnostic.
Torch is imported only when a module is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnspec.api import check, compile
from cnnspec.diagnostics import Diagnostic, SpecError
from cnnspec.layers.kind import Arg, LayerKind, ShapeError
from cnnspec.layers.registry import register

if TYPE_CHECKING:
    from cnnspec.views.report import Report

__version__ = "0.1.0"

__all__ = [
    "Arg",
    "Diagnostic",
    "LayerKind",
    "Report",
    "ShapeError",
    "SpecError",
    "check",
    "compile",
    "register_layer",
    "train",
]


def register_layer(kind: LayerKind, *, replace: bool = False) -> LayerKind:
    """Make a user-defined layer kind available to every spec (see docs/extending.md)."""
    return register(kind, replace=replace)


def __getattr__(name: str) -> Any:
    # Imported on first use: cnnspec.train (a callable subpackage) so that `import cnnspec` stays
    # free of torch, Report so that it stays free of pydantic (the command line's table needs neither).
    if name == "train":
        import importlib

        return importlib.import_module("cnnspec.train")
    if name == "Report":
        from cnnspec.views.report import Report

        return Report
    raise AttributeError(f"module 'cnnspec' has no attribute {name!r}")
