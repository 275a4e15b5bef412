"""Helpers shared by the test modules (imported as `support`; conftest.py holds the fixtures).

The stock specs are found at collection time: every `specs/*.cnn` that
elaborates with all of its network's defaults is a "stock network" and is
covered by the generic tests (static vs compiled parameters and shapes,
golden reports). Family files such as `resnet.cnn`, whose network needs a
parameter without a default, are left to the files that pin them. The canon
(the networks torchvision also builds) is listed explicitly, so that specs
added by others never change what the parity tests promise.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import cnnspec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: Set to 1 to rewrite the golden files instead of comparing with them.
UPDATE_GOLDEN = os.environ.get("CNNSPEC_UPDATE_GOLDEN") == "1"


def _is_family(path: Path) -> bool:
    """Whether a spec's network needs a parameter it has no default for (E506 only)."""
    try:
        cnnspec.check(path)
    except cnnspec.SpecError as e:
        return bool(e.errors) and all(d.code == "E506" for d in e.errors)
    return False


@functools.cache
def stock_specs() -> tuple[Path, ...]:
    """Every spec under specs/ whose (only or same-named) network has all its defaults.

    A spec that fails for any reason other than a missing parameter value is
    kept, so that the generic tests report its error instead of hiding it.
    """
    return tuple(p for p in sorted(SPECS.glob("*.cnn")) if not _is_family(p))


def stock_params(*, exclude: frozenset[str] | set[str] = frozenset()) -> list[Any]:
    """pytest parameters for the stock specs (less those excluded), with their stem as id; big ones marked slow."""
    return [
        pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in BIG else [])
        for p in stock_specs()
        if p.stem not in exclude
    ]


#: Stock networks whose forward pass costs seconds on two cores (marked slow; CI still runs them).
BIG = frozenset(
    {
        "vgg11",
        "vgg13",
        "vgg16",
        "vgg16_d",
        "vgg19",
        "resnet101",
        "resnet152",
        "densenet",
        "densenet121",
        "densenet169",
        "efficientnet_b3",
        "inception_v3",
        "vit_b_16",
        "vit_b_32",
        "vit_l_16",
        "convnext_tiny",
        "convnext_small",
        "convnext_base",
    }
)


#: Stock networks that are another stock network's family file with other numbers (deeper, wider, another
#: patch size) or with its defaults, -> that network: the smallest of its family. Generic tests that run a
#: network at full size run each of these on the meta device instead (shapes, names, counts; no arithmetic),
#: since the code path its forward pass takes is the one the smaller network's real forward pass proves.
FORWARD_BY = {
    "vgg13": "vgg11",
    "vgg16": "vgg11",
    "vgg19": "vgg11",
    "resnet101": "resnet50",
    "resnet152": "resnet50",
    "densenet": "densenet121",
    "densenet169": "densenet121",
    "efficientnet": "efficientnet_b0",
    "efficientnet_b3": "efficientnet_b0",
    "swin": "swin_t",
    "swin_s": "swin_t",
    "vit_b_32": "vit_b_16",
    "vit_l_16": "vit_b_16",
    "convnext_small": "convnext_tiny",
    "convnext_base": "convnext_tiny",
}


def device_for(spec: Path) -> str:
    """Where a generic test builds and runs a stock network: "meta" for those in FORWARD_BY, else "cpu"."""
    return "meta" if spec.stem in FORWARD_BY else "cpu"


@dataclass(frozen=True)
class Canon:
    """A network the spec reproduces from torchvision, to the unit."""

    spec: str
    torchvision: str
    params: int
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The spec file."""
        return SPECS / f"{self.spec}.cnn"

    def build_torchvision(self) -> Any:
        """A fresh torchvision model (torchvision's own initialisation)."""
        import torchvision

        return getattr(torchvision.models, self.torchvision)(**self.kwargs)


#: Issue 2's canon: parameter counts are torchvision's, to the unit.
CANON: dict[str, Canon] = {
    c.spec: c
    for c in (
        Canon("alexnet", "alexnet", 61_100_840),
        Canon("vgg11", "vgg11", 132_863_336),
        Canon("vgg13", "vgg13", 133_047_848),
        Canon("vgg16", "vgg16", 138_357_544),
        Canon("vgg19", "vgg19", 143_667_240),
        Canon("googlenet", "googlenet", 6_624_904, {"aux_logits": False, "init_weights": True}),
        Canon("resnet18", "resnet18", 11_689_512),
        Canon("resnet34", "resnet34", 21_797_672),
        Canon("resnet50", "resnet50", 25_557_032),
        Canon("resnet101", "resnet101", 44_549_160),
        Canon("resnet152", "resnet152", 60_192_808),
    )
}


def canon_params() -> list[Any]:
    """pytest parameters for the canon, with the big networks marked slow."""
    return [pytest.param(c, id=c.spec, marks=[pytest.mark.slow] if c.spec in BIG else []) for c in CANON.values()]


@dataclass
class Run:
    """The result of one `python -m cnnspec` subprocess."""

    rc: int
    out: str
    err: str

    @property
    def both(self) -> str:
        """stdout and stderr together."""
        return self.out + self.err


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> Run:
    """Run the real command line (`sys.executable -m cnnspec ARGS`) and capture its output.

    Asserts that nothing printed a Python traceback: the command line reports
    spec and usage errors as diagnostics, never as tracebacks.
    """
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "NO_COLOR": "1"}
    p = subprocess.run(
        [sys.executable, "-m", "cnnspec", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
    )
    run = Run(p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in run.both, run.both
    return run


def spec_file(tmp_path: Path, text: str, name: str = "net.cnn") -> Path:
    """Write a spec into tmp_path and return its path."""
    path = tmp_path / name
    path.write_text(text)
    return path


def observed_shapes(gm: Any, x: Any) -> tuple[dict[tuple[str, int, int], tuple[int, ...]], Any]:
    """Run gm on x under fx's ShapeProp; return {(spec path, line, col): output shape without batch}, and the output.

    Every fx node the backend emits carries its layer's spec path and span in
    node.meta; the paths are unique, and the span must match too. For a join
    of more than two branches the last fx node of the chain finishes the
    layer, and wins.
    """
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    with torch.no_grad():
        out = ShapeProp(gm).propagate(x)
    shapes: dict[tuple[str, int, int], tuple[int, ...]] = {}
    for node in gm.graph.nodes:
        path = node.meta.get("cnnspec_path")
        if path is not None:
            meta = node.meta["tensor_meta"]
            span = node.meta["cnnspec_span"]
            if node.op == "get_attr":
                # A learned tensor (`param`) has no batch dimension of its own: it broadcasts against the
                # batched input from the right, as layers/param.py's per_sample states its static shape.
                shapes[(path, span.line, span.col)] = tuple(meta.shape)
                continue
            assert meta.shape[0] == x.shape[0], (path, meta.shape)
            shapes[(path, span.line, span.col)] = tuple(meta.shape[1:])
    return shapes, out


def _as_broadcast(observed: tuple[int, ...] | None, static: tuple[int, ...]) -> tuple[int, ...] | None:
    """A learned tensor's shape as it broadcasts against a batched input of per-sample rank len(static)."""
    if observed is None or len(observed) == len(static):
        return observed
    if len(observed) == len(static) + 1 and observed[0] == 1:
        return observed[1:]
    return (1,) * (len(static) - len(observed)) + observed


def randomise_batchnorm(model: Any, gen: Any) -> None:
    """Give every batch norm non-trivial affine parameters and running statistics.

    Freshly initialised ones are the identity, so parity with them would test little.
    """
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)


def assert_static_shapes(report: cnnspec.Report, gm: Any, x: Any) -> Any:
    """Assert that every layer's static output shape is the one x takes through gm; return gm's output."""
    shapes, out = observed_shapes(gm, x)
    mismatched = []
    for row in report.layers:
        observed = shapes.get((row.path, row.line, row.col))
        if row.op == "param":
            observed = _as_broadcast(observed, tuple(row.output_shape))
        if observed != tuple(row.output_shape):
            mismatched.append((row.path, row.output_shape, observed))
    assert not mismatched, f"static vs observed (path, static, observed): {mismatched[:10]}"
    main = out[0] if isinstance(out, tuple) else out
    assert tuple(main.shape) == (x.shape[0], *report.output_shape)
    return out


def load_generated_class(path: Path) -> Any:
    """The network class of a module file written by `compile -o model.py`, imported in this interpreter.

    The network's class is the last one the file defines (its blocks' classes come first).
    """
    source = path.read_text(encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"generated_{abs(hash(str(path)))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    *_, name = re.findall(r"^class (\w+)\(nn.Module\):", source, re.M)
    return getattr(module, name)
