"""The built-in data-parallel trainer (``cnnspec train``).

Torch is imported only when training starts, so importing this package (and
the ``cnnspec`` CLI) stays fast. The entry points are :func:`train` (Python)
and :func:`cnnspec.train.cli.main` (command line).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnspec.train.config import TrainConfig
    from cnnspec.train.loop import TrainResult

__all__ = ["TrainConfig", "TrainResult", "train"]


def train(*args: Any, **kwargs: Any) -> TrainResult:
    """Train a network; see :func:`cnnspec.train.api.train` for the arguments."""
    from cnnspec.train.api import train as _train

    return _train(*args, **kwargs)


def __getattr__(name: str) -> Any:
    # Lazy exports: the config needs pydantic and the result needs torch.
    if name == "TrainConfig":
        from cnnspec.train.config import TrainConfig

        return TrainConfig
    if name == "TrainResult":
        from cnnspec.train.loop import TrainResult

        return TrainResult
    raise AttributeError(f"module 'cnnspec.train' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """Lets ``cnnspec.train(...)`` call :func:`train` while ``cnnspec.train`` stays a package."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
