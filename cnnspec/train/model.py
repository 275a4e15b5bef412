"""Where the network comes from: a .cnn spec compiled by cnnspec, or any module factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnspec.train.errors import TrainError, UsageError


@dataclass
class ModelSource:
    """Builds the network and knows its input shape (C, H, W) and class count."""

    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    num_classes: int
    name: str
    spec_text: str | None = None
    #: The checked spec (cnnspec.api.Checked: its IR is what a pipeline is cut along); None for a factory.
    checked: Callable[[], Any] | None = None


def from_spec(spec: str, network: str | None, params: dict[str, Any], search: list[str] | None = None) -> ModelSource:
    """Check and compile a .cnn spec (path or text) with the real compiler; search: the directories
    its imports are looked for in (--path)."""
    try:
        import cnnspec
        from cnnspec import SpecError
    except ImportError as exc:  # the compiler is part of this package; only a broken install lacks it
        raise TrainError(f"cannot import the cnnspec compiler: {exc}") from exc

    is_text = "\n" in spec  # source text rather than a path
    path = Path(spec)
    if not is_text and not path.is_file():
        raise UsageError(f"spec file {spec!r} does not exist")
    source: str | Path = spec if is_text else path  # a Path: "lenet (copy).cnn" is a file name, not spec text
    try:
        report = cnnspec.check(source, network, path=search, **params)
    except SpecError as exc:
        raise TrainError(exc.render().rstrip()) from exc
    except TypeError as exc:
        # Unknown network parameter given with --set.
        raise UsageError(str(exc)) from exc
    output = tuple(report.output_shape)
    if len(output) != 1:
        raise UsageError(
            f"{report.network} outputs {' x '.join(map(str, output))} per image; "
            "a classifier must output one score per class"
        )

    def build() -> nn.Module:
        try:
            return cnnspec.compile(source, network, path=search, **params)
        except SpecError as exc:
            raise TrainError(exc.render().rstrip()) from exc

    def checked() -> Any:
        from cnnspec.api import analyse

        try:
            return analyse(source, network, path=search, **params)
        except SpecError as exc:
            raise TrainError(exc.render().rstrip()) from exc

    text = spec if is_text else path.read_text(encoding="utf-8")
    return ModelSource(
        build=build,
        input_shape=tuple(report.input_shape),
        num_classes=output[0],
        name=report.network,
        spec_text=text,
        checked=checked,
    )


def from_factory(factory: Callable[[], nn.Module], input_shape: tuple[int, ...]) -> ModelSource:
    """Any ``nn.Module`` factory; the class count is read off one forward pass."""
    probe = factory().eval()
    with torch.no_grad():
        out = probe(torch.zeros(1, *input_shape))
    if out.dim() != 2:
        raise UsageError(f"the model outputs shape {tuple(out.shape)}; a classifier must output (N, classes)")
    name = getattr(factory, "__name__", type(probe).__name__)
    return ModelSource(build=factory, input_shape=tuple(input_shape), num_classes=out.shape[1], name=name)
