"""A user-registered layer works end to end: shape rule, diagnostics, torch module."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import cnnspec
from cnnspec import Arg, LayerKind, ShapeError
from cnnspec.layers.registry import SAVES_NOTHING, SAVES_OUTPUT, Attrs, lookup, positive_int


def _shape(a: Attrs, x: tuple[int, ...]) -> tuple[int, ...]:
    c, h, w = x
    r = a.factor
    if h % r or w % r:
        raise ShapeError(f"space_to_depth: {h}×{w} is not divisible by {r}", help="pad the input")
    return (c * r * r, h // r, w // r)


def _module(a: Attrs, x: tuple[int, ...], inplace: bool) -> Any:
    return torch.nn.PixelUnshuffle(a.factor)


def _register_space_to_depth(name: str, **rules: Any) -> None:
    if lookup(name) is None:
        cnnspec.register_layer(
            LayerKind(
                name=name, doc="r×r blocks into channels", args=(Arg("factor", positive_int, 2),),
                shape=_shape, module=_module, **rules,
            )
        )  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def space_to_depth() -> None:
    _register_space_to_depth("space_to_depth")


SPEC = """
network Tiny {
    input: 3 x 32 x 32
    s2d: space_to_depth(2)
    conv(16, 3, padding = 1)
}
"""


def test_registered_layer_checks_and_compiles() -> None:
    report = cnnspec.check(SPEC)
    assert report.layers[0].output_shape == [12, 16, 16]
    assert report.total_params == 16 * 12 * 9 + 16
    model = cnnspec.compile(SPEC)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 16, 16, 16)
    assert isinstance(model.s2d, torch.nn.PixelUnshuffle)


def test_registered_shape_rule_reports_at_the_call() -> None:
    with pytest.raises(cnnspec.SpecError) as e:
        cnnspec.check(SPEC.replace("32 x 32", "31 x 31"))
    (d,) = e.value.diagnostics
    assert "31×31 is not divisible by 2" in d.message
    assert (d.span.line, d.span.col) == (4, 5)
    assert d.help == ["pad the input"]


def test_registering_a_name_twice_needs_replace() -> None:
    kind = lookup("space_to_depth")
    assert kind is not None
    with pytest.raises(ValueError, match="already registered"):
        cnnspec.register_layer(kind)
    assert cnnspec.register_layer(kind, replace=True) is kind


def test_a_registered_saves_rule_gives_the_activation_memory() -> None:
    """What autograd keeps of a layer is its entry's `saves` rule; without one, its input."""
    from test_analysis import measure_saved_bytes

    from cnnspec.api import analyse
    from cnnspec.backends.fx import to_graph_module

    _register_space_to_depth("space_to_depth_exact", saves=SAVES_NOTHING)  # pixel_unshuffle keeps nothing
    x = torch.randn(2, 3, 32, 32)
    exact = analyse(SPEC.replace("space_to_depth", "space_to_depth_exact"))
    assert exact.analysis.activation_bytes(2) == measure_saved_bytes(to_graph_module(exact.graph), x)
    # The default rule (its input) counts the network's input batch, which pixel_unshuffle does not keep.
    default = analyse(SPEC)
    assert default.analysis.activation_bytes(2) == exact.analysis.activation_bytes(2) + x.numel() * 4


@pytest.mark.parametrize(("saves", "in_place"), [(SAVES_NOTHING, True), (SAVES_OUTPUT, False)])
def test_a_registered_saves_rule_decides_where_the_next_activation_runs_in_place(saves: Any, in_place: bool) -> None:
    """A ReLU may overwrite the layer's output only where the layer's saves rule does not keep it:
    the one entry decides the memory figures and the compiled module alike."""
    name = f"space_to_depth_{'keeps_output' if saves == SAVES_OUTPUT else 'keeps_nothing'}"
    _register_space_to_depth(name, saves=saves)
    model = cnnspec.compile(SPEC.replace("space_to_depth(2)", f"{name}(2)\n    act: relu"))
    assert model.act.inplace is in_place
