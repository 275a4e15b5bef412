"""A user-registered layer works end to end: shape rule, diagnostics, torch module."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import cnnspec
from cnnspec import Arg, LayerKind, ShapeError
from cnnspec.layers.kind import SAVES_NOTHING, SAVES_OUTPUT, Attrs, positive_int
from cnnspec.layers.registry import lookup


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


def _max_shape(a: Attrs, xs: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    if any(x != xs[0] for x in xs):
        raise ShapeError("max: every branch must give the same shape", code="E303")
    return xs[0]


def _register_max_join() -> None:
    if lookup("elementwise_max") is None:
        cnnspec.register_layer(
            LayerKind(
                name="elementwise_max", doc="The elementwise maximum of its branches.", shape=_max_shape,
                function="torch.maximum", arity="many", saves=SAVES_NOTHING, category="join",
                label=lambda a: "max",
            )
        )  # fmt: skip


JOIN_SPEC = """
network Maxed {
    input: 3 x 8 x 8
    conv(4, 3, padding = 1)
    elementwise_max {
        a: conv(4, 1)
        b: conv(4, 3, padding = 1)
        c: identity
    }
    flatten
    linear(2)
}
"""


def test_a_registered_join_kind_is_a_join_everywhere() -> None:
    """A kind of arity "many" registered by a user is written `name { ... }` and joins its branches
    in the checker, the receptive-field pass, the compiled module and the diagram, like `add`."""
    from cnnspec.api import analyse
    from cnnspec.backends.diagram import to_dot

    _register_max_join()
    report = cnnspec.check(JOIN_SPEC)
    join = next(row for row in report.layers if row.op == "elementwise_max")
    assert join.output_shape == [4, 8, 8]
    assert len(join.inputs) == 3
    assert join.receptive_field == [5, 5]  # the widest branch: 3×3 then 3×3
    model = cnnspec.compile(JOIN_SPEC)
    x = torch.randn(2, 3, 8, 8)
    assert model(x).shape == (2, 2)
    maxima = [n for n in model.graph.nodes if n.op == "call_function" and n.target is torch.maximum]
    assert len(maxima) == 2  # ((a max b) max c), as add folds its branches
    assert maxima[-1].meta["cnnspec_path"] == "elementwise_max"
    checked = analyse(JOIN_SPEC)
    dot = to_dot(checked.graph, checked.analysis).dot
    assert "<b>max</b>" in dot and "#f2f2f2" in dot  # the join's label and the joins' fill


def test_a_join_kind_called_like_a_layer_says_it_takes_a_body() -> None:
    _register_max_join()
    with pytest.raises(cnnspec.SpecError) as e:
        cnnspec.check(JOIN_SPEC.replace("elementwise_max {", "elementwise_max()\n    g: {"))
    assert [d.code for d in e.value.diagnostics] == ["E103"]


def test_docs_layer_table_is_generated_from_the_layer_table() -> None:
    from pathlib import Path

    from cnnspec.layers.docs import current_section, section

    docs = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text(encoding="utf-8")
    assert current_section(docs) == section(), "run `python -m cnnspec.layers.docs docs/language.md`"


def test_every_builtin_kind_has_its_rules_in_its_entry() -> None:
    """What the backends and passes need of a kind is in its entry, not keyed by its name elsewhere."""
    from cnnspec.layers.builtin import BUILTIN
    from cnnspec.layers.kind import CATEGORIES
    from cnnspec.layers.registry import is_join, join_kinds

    assert set(join_kinds()) >= {"add", "mul", "concat"}
    for kind in BUILTIN:
        assert kind.category in CATEGORIES, kind.name
        assert kind.lowers_to or kind.function, kind.name
        assert is_join(kind.name) == (kind.arity == "many") == (kind.category == "join"), kind.name


def test_registering_is_safe_from_threads() -> None:
    """Eight threads registering kinds at once lose none of them, and readers see the built-ins throughout."""
    from concurrent.futures import ThreadPoolExecutor

    base = lookup("relu")
    assert base is not None

    def add(i: int) -> bool:
        cnnspec.register_layer(LayerKind(name=f"threaded_{i}", doc="", shape=base.shape))
        return lookup("conv") is not None

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(add, range(16)))
    assert all(lookup(f"threaded_{i}") is not None for i in range(16))
