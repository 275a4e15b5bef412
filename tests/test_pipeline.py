"""The static pipeline planner: plans cut only where one tensor crosses, cover every node in order,
and are optimal (checked against brute force on small networks)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from support import stock_params

from cnnspec.analysis.memory import applied_saves, saves_rules
from cnnspec.analysis.pipeline import (
    MEASURES,
    PipelineError,
    PipelinePlan,
    legal_cut_points,
    plan_pipeline,
)
from cnnspec.api import Checked, analyse
from cnnspec.ir import Graph
from cnnspec.layers.kind import F32, SAVES_INPUT

SPECS = Path(__file__).resolve().parent.parent / "specs"

#: A small network with every kind of structure: a chain, a residual, a join of branches, flat layers.
MIXED = """
network Mixed {
    input: 3 x 16 x 16
    conv(8, 3, padding = 1); batchnorm; relu
    residual { conv(8, 3, padding = 1); relu; conv(8, 3, padding = 1) }
    relu
    maxpool(2)
    concat { conv(4, 1); { conv(4, 1); relu; conv(6, 3, padding = 1) }; maxpool(3, stride = 1, padding = 1) }
    conv(16, 3, padding = 1); relu
    conv(16, 1)
    flatten
    linear(32); relu; dropout(0.5)
    linear(10)
}
"""


def _stage_memory(graph: Graph, ids: tuple[int, ...], batch: int) -> int:
    """Activation bytes of one stage run on its own: cnnspec.analysis.memory's counting over the
    stage's nodes, the tensor it receives a storage of its own (written apart from the planner's
    prefix sums and correction, which it checks)."""
    nodes = graph.nodes
    inside = set(ids)
    rules, views, joins = saves_rules()
    storage: dict[int, int] = {}
    kept: set[int] = set()
    total = 0

    def root(i: int) -> int:
        return storage.get(i, -1) if i in inside else -1  # -1: the received tensor

    for nid in ids:
        node = nodes[nid]
        if nid == 0:
            storage[0] = 0
            continue
        storage[nid] = root(node.inputs[0]) if node.kind in views else nid
        positions, per_sample, fixed = applied_saves(rules.get(node.kind, SAVES_INPUT), node, joins, "cpu")
        for pos in positions:
            key = storage[nid] if pos == -1 else root(node.inputs[pos])
            if key not in kept:
                kept.add(key)
                src = nodes[ids[0] - 1] if key == -1 else nodes[key]
                per_sample += math.prod(src.out_shape) * F32
        total += per_sample * batch + fixed
    return total


def _assert_well_formed(graph: Graph, plan: PipelinePlan, stages: int) -> None:
    """Contiguous stages covering every node once, in order, cut only at legal points."""
    assert len(plan.stages) == stages and len(plan.cuts) == stages - 1
    covered = [i for s in plan.stages for i in s.nodes]
    assert covered == list(range(len(graph.nodes)))
    assert set(plan.cuts) <= set(graph.cut_points())
    assert list(plan.cuts) == sorted(set(plan.cuts))
    for k, s in enumerate(plan.stages):
        assert s.index == k and s.layers == len([i for i in s.nodes if i > 0]) >= 1
        assert s.boundary == (graph.nodes[s.nodes[-1]].out_shape if k < stages - 1 else None)
        # Every tensor a stage reads from before it is the previous stage's boundary.
        for i in s.nodes:
            for src in graph.nodes[i].inputs:
                assert src in s.nodes or (k > 0 and src == plan.cuts[k - 1])


def _brute_force(c: Checked, stages: int, measure: str, batch: int) -> tuple[int, int]:
    """The least largest stage over every choice of cuts, and the least boundary sum among those."""
    graph, a = c.graph, c.analysis
    params = [p[0] if p else 0 for p in a.params]
    macs = [m or 0 for m in a.macs]
    best: tuple[int, int] | None = None
    n = len(graph.nodes)
    for cuts in itertools.combinations(legal_cut_points(graph), stages - 1):
        bounds = [0, *cuts, n - 1]
        worst = 0
        for k in range(stages):
            ids = tuple(range(0 if k == 0 else bounds[k] + 1, bounds[k + 1] + 1))
            if measure == "memory":
                cost = _stage_memory(graph, ids, batch)
            else:
                cost = sum((params if measure == "params" else macs)[i] for i in ids)
            worst = max(worst, cost)
        sent = sum(math.prod(graph.nodes[c].out_shape) for c in cuts)
        if best is None or (worst, sent) < best:
            best = (worst, sent)
    assert best is not None
    return best


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("stages", [1, 2, 3, 4, 5])
def test_small_plans_are_optimal_against_brute_force(measure: str, stages: int) -> None:
    c = analyse(MIXED)
    g = c.graph
    plan = plan_pipeline(g, stages, measure, batch=4, analysis=c.analysis)
    _assert_well_formed(g, plan, stages)
    worst, sent = _brute_force(c, stages, measure, 4)
    assert max(s.total(measure) for s in plan.stages) == worst
    assert sum(math.prod(g.nodes[p].out_shape) for p in plan.cuts) == sent


def test_stage_memory_counts_a_received_tensor_the_stage_keeps() -> None:
    c = analyse(MIXED)
    for stages in (2, 3, 4, 5):
        plan = plan_pipeline(c.graph, stages, "macs", batch=3, analysis=c.analysis)
        for s in plan.stages:
            assert s.memory == _stage_memory(c.graph, s.nodes, 3), (stages, s.index)
    # A plain chain: relu keeps its output, and the conv after it keeps the same tensor as its input.
    # Split between them, both stages hold a copy; the sum of the stages exceeds the whole network's.
    text = "network Two { input: 1 x 8 x 8\n residual { conv(1, 3, padding = 1) }; relu\n conv(4, 3) }"
    c = analyse(text)
    assert legal_cut_points(c.graph) == [2, 3]
    plan = plan_pipeline(c.graph, 3, "memory", analysis=c.analysis)
    assert [s.layers for s in plan.stages] == [2, 1, 1]
    assert plan.stages[2].memory == 1 * 8 * 8 * F32
    assert sum(s.memory for s in plan.stages) == c.analysis.activation_bytes(1) + 1 * 8 * 8 * F32


def test_cut_points_of_a_residual_and_a_join_are_outside_them() -> None:
    g = analyse(MIXED).graph
    add, concat = [n for n in g.nodes if n.kind in ("add", "concat")]
    assert (add.id, concat.id) == (7, 15)
    legal = legal_cut_points(g)
    # The residual body (4..6: the shortcut from 3 crosses), concat's branches (10..14), the input and
    # the last layer are left out; the residual's input (3) and output (7) and the concat (15) are in.
    assert legal == [1, 2, 3, 7, 8, 9, *range(15, 23)]


@pytest.mark.parametrize("spec", ["resnet152", "vgg16", "googlenet"])
@pytest.mark.parametrize("stages", [2, 4])
def test_stock_plans_cover_the_network_and_add_up(spec: str, stages: int) -> None:
    c = analyse(SPECS / f"{spec}.cnn")
    for measure in MEASURES:
        plan = plan_pipeline(c.graph, stages, measure, batch=8, analysis=c.analysis)
        _assert_well_formed(c.graph, plan, stages)
        assert sum(s.params for s in plan.stages) == c.analysis.trainable_params
        assert sum(s.buffers for s in plan.stages) == c.analysis.buffers
        assert sum(s.macs for s in plan.stages) == c.analysis.total_macs
        assert sum(s.memory for s in plan.stages) >= c.analysis.activation_bytes(8)
        for s in plan.stages:
            assert s.memory == _stage_memory(c.graph, s.nodes, 8)
        mean = {m: sum(s.total(m) for s in plan.stages) / stages for m in MEASURES}
        for m in MEASURES:
            assert plan.imbalance[m] == pytest.approx(max(s.total(m) for s in plan.stages) / mean[m])
        # The measure balanced on is the best of the three plans for that measure.
        others = [plan_pipeline(c.graph, stages, o, batch=8, analysis=c.analysis) for o in MEASURES]
        assert plan.imbalance[measure] <= min(o.imbalance[measure] for o in others) + 1e-12


def test_vgg16_balances_on_macs_but_its_first_linear_layer_holds_most_parameters() -> None:
    c = analyse(SPECS / "vgg16.cnn")
    plan = plan_pipeline(c.graph, 2, "macs", analysis=c.analysis)
    assert plan.imbalance["macs"] < 1.05
    assert plan.imbalance["params"] > 1.95
    fc6 = next(n for n in c.graph.nodes if n.kind == "linear")
    assert c.analysis.params[fc6.id][0] == 102_764_544
    by_params = plan_pipeline(c.graph, 4, "params", analysis=c.analysis)
    assert any(s.params >= 102_764_544 for s in by_params.stages)


def test_stage_paths_are_the_module_paths_of_its_layers() -> None:
    c = analyse(SPECS / "resnet18.cnn")
    plan = plan_pipeline(c.graph, 3, "macs", analysis=c.analysis)
    paths = [p for s in plan.stages for p in s.paths]
    assert paths == [n.path for n in c.graph.nodes if n.has_module]
    assert plan.stages[0].first == "conv1" and plan.stages[-1].last == "fc"


def test_one_stage_is_the_whole_network() -> None:
    c = analyse(SPECS / "lenet5.cnn")
    plan = plan_pipeline(c.graph, 1)
    assert plan.cuts == () and plan.stages[0].nodes == tuple(range(len(c.graph.nodes)))
    assert plan.imbalance == {"macs": 1.0, "params": 1.0, "memory": 1.0}
    assert plan.stages[0].boundary is None


def test_at_most_one_stage_more_than_legal_cut_points() -> None:
    c = analyse(SPECS / "lenet5.cnn")
    legal = legal_cut_points(c.graph)
    assert len(legal) == len(c.graph.nodes) - 2  # every node but the input and the last
    plan = plan_pipeline(c.graph, len(legal) + 1)
    assert all(s.layers == 1 for s in plan.stages)
    with pytest.raises(PipelineError) as e:
        plan_pipeline(c.graph, len(legal) + 2)
    assert e.value.code == "E701"
    assert f"{len(legal)} legal cut points, so at most {len(legal) + 1} stages" in e.value.message


def test_a_network_of_one_residual_cannot_be_split() -> None:
    c = analyse("network R { input: 3 x 8 x 8\n residual { conv(3, 3, padding = 1); relu } }")
    assert legal_cut_points(c.graph) == []
    with pytest.raises(PipelineError) as e:
        plan_pipeline(c.graph, 2)
    assert e.value.code == "E701" and "0 legal cut points, so at most 1 stage" in e.value.message


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"stages": 0}, "at least 1 stage"),
        ({"stages": 2, "balance": "flops"}, "unknown balance 'flops'"),
        ({"stages": 2, "batch": 0}, "batch size"),
    ],
)
def test_bad_requests_raise_value_errors(kwargs: dict[str, object], text: str) -> None:
    g = analyse(SPECS / "lenet5.cnn").graph
    with pytest.raises(ValueError, match=text):
        plan_pipeline(g, **kwargs)  # type: ignore[arg-type]


def test_memory_figures_follow_the_batch() -> None:
    c = analyse(SPECS / "resnet18.cnn")
    one = plan_pipeline(c.graph, 2, "macs", batch=1, analysis=c.analysis)
    many = plan_pipeline(c.graph, 2, "macs", batch=16, analysis=c.analysis)
    assert one.cuts == many.cuts  # MACs do not depend on the batch
    assert [s.memory for s in many.stages] == [_stage_memory(c.graph, s.nodes, 16) for s in many.stages]
    assert many.stages[0].memory > 15 * one.stages[0].memory


# ------------------------------------------------------------------ cut markers

#: MIXED with a marker after the residual's relu and one after the concat.
MARKED = MIXED.replace("    relu\n    maxpool(2)", "    relu; cut\n    maxpool(2)").replace(
    "padding = 1) }; maxpool(3, stride = 1, padding = 1) }",
    "padding = 1) }; maxpool(3, stride = 1, padding = 1) }; cut",
)


def test_cut_markers_change_no_module_path_figure_or_weight_name() -> None:
    import cnnspec

    plain, marked = analyse(MIXED), analyse(MARKED)
    assert MARKED.count("cut") == 2
    assert [n._replace(span=None) for n in plain.graph.nodes] == [n._replace(span=None) for n in marked.graph.nodes]
    assert [m.node for m in marked.graph.cut_markers] == [8, 15]
    assert plain.graph.cut_markers == []
    assert marked.analysis.total_macs == plain.analysis.total_macs
    assert list(cnnspec.compile(MARKED).state_dict()) == list(cnnspec.compile(MIXED).state_dict())


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("stages", [3, 4, 5])
def test_markers_are_boundaries_and_the_rest_is_optimal(measure: str, stages: int) -> None:
    c = analyse(MARKED)
    plan = plan_pipeline(c.graph, stages, measure, batch=2, analysis=c.analysis)
    _assert_well_formed(c.graph, plan, stages)
    assert plan.pinned == (8, 15) and {8, 15} <= set(plan.cuts)
    graph, n = c.graph, len(c.graph.nodes)
    best = None
    for cuts in itertools.combinations(legal_cut_points(graph), stages - 1):
        if not {8, 15} <= set(cuts):
            continue
        bounds = [0, *cuts, n - 1]
        ids = [tuple(range(0 if k == 0 else bounds[k] + 1, bounds[k + 1] + 1)) for k in range(stages)]
        if measure == "memory":
            worst = max(_stage_memory(graph, s, 2) for s in ids)
        else:
            per = [p[0] if p else 0 for p in c.analysis.params] if measure == "params" else c.analysis.macs
            worst = max(sum(per[i] or 0 for i in s) for s in ids)
        best = worst if best is None else min(best, worst)
    assert max(s.total(measure) for s in plan.stages) == best


def _error(text: str, stages: int) -> PipelineError:
    c = analyse(text)
    with pytest.raises(PipelineError) as e:
        plan_pipeline(c.graph, stages, analysis=c.analysis)
    return e.value


def test_a_marker_inside_a_residual_names_both_tensors_and_their_layers() -> None:
    e = _error(
        "network N { input: 4 x 8 x 8\n conv(4, 3, padding = 1)\n residual { conv(4, 3, padding = 1); cut; relu } }", 2
    )
    assert e.code == "E702" and e.span is not None and (e.span.line, e.span.col) == (3, 38)
    assert "would pass 2 tensors, not one: 4×8×8 from `0` (conv) and 4×8×8 from `1` (conv)" in e.message
    assert [(n.span.line, n.span.col) for n in e.notes if n.span] == [(2, 2), (3, 13)]


def test_a_marker_between_inception_branches_names_every_tensor() -> None:
    c = analyse(SPECS / "googlenet.cnn")
    text = (
        (SPECS / "googlenet.cnn")
        .read_text()
        .replace("BasicConv(c3, 3, padding = 1)", "BasicConv(c3, 3, padding = 1); cut", 1)
    )
    assert "cut" in text
    e = _error(text, 2)
    # After inception3a's second branch: the module's input (read by branches 3 and 4) and the
    # outputs of branches 1 and 2 (read by the concat) cross.
    assert e.code == "E702" and e.message.endswith(
        "would pass 3 tensors, not one: 192×28×28 from `maxpool2` (maxpool), 64×28×28 from "
        "`inception3a.branch1.2` (relu) and 128×28×28 from `inception3a.branch2.1.2` (relu)"
    )
    assert [f.path for f in e.trace] == ["inception3a"]
    assert c.graph.cut_markers == []


@pytest.mark.parametrize(
    ("body", "stages", "code", "text"),
    [
        ("cut; conv(4, 3); relu", 2, "E702", "no layer before it"),
        ("conv(4, 3); relu; cut", 2, "E702", "no layer after it"),
        ("conv(4, 3); cut * 2; relu", 3, "E702", "in the same place as another"),
        ("conv(4, 3); cut; relu; cut; conv(4, 1)", 2, "E703", "2 cut markers, more than the 1 boundary of 2 stages"),
        ("conv(4, 3); cut; relu", 3, "E701", "1 legal cut point, so at most 2 stages"),
        ("conv(4, 3); cut; relu", 1, "E703", "the spec has 1 cut marker, but a plan of 1 stage has no boundary"),
        ("conv(4, 3); cut; relu; cut; conv(4, 1); cut; relu", 3, "E703", "3 cut markers, more than the 2 boundaries"),
    ],
)
def test_marker_mistakes(body: str, stages: int, code: str, text: str) -> None:
    e = _error(f"network N {{ input: 1 x 8 x 8\n {body} }}", stages)
    assert e.code == code and text in e.message, e.message
    if code != "E701":
        assert e.span is not None and e.span.line == 2


def test_a_marker_is_harmless_without_a_plan_and_takes_no_arguments() -> None:
    from cnnspec.diagnostics import SpecError

    c = analyse("network N { input: 1 x 8 x 8\n conv(4, 3); cut; relu; cut }")  # no plan: no error
    assert len(c.graph.cut_markers) == 2
    with pytest.raises(SpecError) as e:
        analyse("network N { input: 1 x 8 x 8\n conv(4, 3); cut(2); relu }")
    assert e.value.errors[0].code.startswith("E2")


def test_pipeline_errors_render_as_spec_errors() -> None:
    text = "network N { input: 4 x 8 x 8\n conv(4, 3, padding = 1)\n residual { conv(4, 3, padding = 1); cut; relu } }"
    c = analyse(text)
    with pytest.raises(PipelineError) as e:
        plan_pipeline(c.graph, 2)
    rendered = e.value.spec_error(c.program.sources).render()
    assert rendered.startswith("<spec>:3:38: error[E702]: a pipeline boundary at this cut marker")
    assert "residual { conv(4, 3, padding = 1); cut; relu }" in rendered and "^^^" in rendered


@pytest.mark.parametrize("code", ["E701", "E702", "E703"])
def test_the_codes_examples_do_what_docs_errors_md_says(code: str) -> None:
    from cnnspec.diagnostics.codes import CODES

    entry = CODES[code]
    stages = int(entry.args.removeprefix("--pipeline "))
    wrong, fixed = analyse(entry.wrong), analyse(entry.fixed)
    with pytest.raises(PipelineError) as e:
        plan_pipeline(wrong.graph, stages)
    assert e.value.code == code
    assert len(plan_pipeline(fixed.graph, stages).stages) == stages


def _measured_stage_memory(c: Checked, plan: PipelinePlan, batch: int) -> list[int]:
    """Bytes autograd really saves in each stage of one training forward, each stage run on a tensor
    of its own made from what the stage before sent (as a pipeline stage receives it)."""
    import torch
    import torch.fx

    from cnnspec.backends.fx import to_graph_module

    gm = to_graph_module(c.graph)
    gm.train()
    stage_of_path = {c.graph.nodes[i].path: s.index for s in plan.stages for i in s.nodes if i > 0}
    owned = {t.untyped_storage().data_ptr() for t in [*gm.parameters(), *gm.buffers()]}
    seen: list[dict[int, int]] = [{} for _ in plan.stages]
    current = [0]

    class Stages(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> object:
            stage = stage_of_path.get(n.meta.get("cnnspec_path", ""), current[0])
            if stage != current[0]:
                current[0] = stage
                # The received tensor: a storage of this stage's own, and a leaf as a stage input
                # is; `* 1` lets a first op that runs in place (a relu after the add) run.
                for arg in n.all_input_nodes:
                    if stage_of_path.get(arg.meta.get("cnnspec_path", ""), 0) < stage:
                        self.env[arg] = self.env[arg].detach().requires_grad_() * 1
            return super().run_node(n)

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in owned:
            seen[current[0]][s.data_ptr()] = s.nbytes()
        return t

    torch.manual_seed(0)
    x = torch.randn(batch, *c.graph.input_shape)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        Stages(gm).run(x)
    return [sum(s.values()) for s in seen]


@pytest.mark.parametrize(
    ("spec", "shape", "stages"),
    [("lenet5", None, 4), ("resnet18", (3, 64, 64), 3), ("googlenet", (3, 96, 96), 4), ("vgg11", (3, 64, 64), 5)],
)
def test_stage_memory_is_what_autograd_saves_in_each_stage(
    spec: str, shape: tuple[int, ...] | None, stages: int
) -> None:
    pytest.importorskip("torch")
    c = analyse(SPECS / f"{spec}.cnn", input_shape=shape)
    for measure in MEASURES:
        plan = plan_pipeline(c.graph, stages, measure, batch=2, analysis=c.analysis)
        assert [s.memory for s in plan.stages] == _measured_stage_memory(c, plan, 2), measure


def test_hover_on_a_cut_marker_says_where_its_boundary_falls() -> None:
    from cnnspec.lsp.check import check_document
    from cnnspec.lsp.hover import hover_text

    text = (
        "block B() { conv(4, 3, padding = 1); cut; relu }\nnetwork N {\n    input: 1 x 8 x 8\n    a: B(); b: B()\n}\n"
    )
    hover = hover_text(check_document("/tmp/marked.cnn", text), 1, 38)
    assert hover is not None and hover.startswith("**cut**")
    assert "pipeline boundary after a.0 (4×8×8), b.0 (4×8×8)" in hover


@pytest.mark.parametrize("stages", [2, 3, 5, 8])
def test_plans_too_big_to_tie_break_are_still_optimal(stages: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnspec.analysis.pipeline as pipeline

    c = analyse(MIXED)
    marked = analyse(MARKED)
    for checked in (c, marked) if stages > 2 else (c,):  # MARKED pins two boundaries
        for measure in MEASURES:
            exact = plan_pipeline(checked.graph, stages, measure, batch=2, analysis=checked.analysis)
            monkeypatch.setattr(pipeline, "MAX_TIE_BREAK_WORK", 0)
            quick = plan_pipeline(checked.graph, stages, measure, batch=2, analysis=checked.analysis)
            monkeypatch.undo()
            _assert_well_formed(checked.graph, quick, stages)
            assert set(quick.pinned) <= set(quick.cuts)
            worst = [max(s.total(measure) for s in p.stages) for p in (exact, quick)]
            assert worst[0] == worst[1], (measure, exact.cuts, quick.cuts)


def test_a_long_chain_in_many_stages_is_planned() -> None:
    # No time limit: tests assert no wall-clock times (a quadratic planner would still show here as a stall).
    c = analyse("network Long { input: 8 x 8 x 8\n conv(8, 3, padding = 1) * 3000 }")
    plan = plan_pipeline(c.graph, 1000, analysis=c.analysis)
    assert len(plan.stages) == 1000 and max(s.layers for s in plan.stages) == 3


@pytest.mark.parametrize("spec", stock_params())
def test_every_stock_network_splits_at_every_legal_cut_point(spec: Path) -> None:
    """The fx module's data flow is the IR's: cut after every legal point at once (a stage reading a
    tensor from before its own input would make split raise), each stage runs on what the one before
    returns. One split covers every single cut: a node that reads across some cut c reads from before
    the first stage after c. Built on the meta device (no weights); a network's aux heads, which split
    refuses, are left out, as the main path is what a pipeline cuts."""
    import copy

    import torch

    from cnnspec.backends.fx import to_graph_module
    from cnnspec.train.pipeline import split

    graph = analyse(spec).graph
    main = copy.copy(graph)
    main.aux = []
    with torch.device("meta"):
        gm = to_graph_module(main)
    cuts = [p for p in legal_cut_points(graph) if p < graph.output]
    stages = split(gm, main, cuts)
    assert len(stages) == len(cuts) + 1
    y = torch.empty(2, *graph.input_shape, device="meta")
    for stage in stages:
        assert [n.op for n in stage.module.graph.nodes].count("placeholder") == 1
        assert tuple(y.shape[1:]) == stage.in_shape
        y = stage.module(y)
        assert tuple(y.shape[1:]) == stage.out_shape, stage.index
    assert tuple(y.shape[1:]) == graph.output_shape


def test_a_vit_cut_before_its_class_token_computes_the_whole_network() -> None:
    """The class token is expanded over the batch read from the tensor it joins (as the IR records),
    not from the network's input, which a later stage does not have: cuts 1 to 3 are legal, and the
    plan of 5 stages takes one."""
    import torch

    import cnnspec
    from cnnspec.train.pipeline import split

    c = analyse(SPECS / "vit_digits.cnn")
    token = next(n for n in c.graph.nodes if n.path == "class_token")
    assert set(range(1, token.id)) <= set(legal_cut_points(c.graph))
    plan = plan_pipeline(c.graph, 5, "macs", analysis=c.analysis)
    torch.manual_seed(0)
    whole = cnnspec.compile(SPECS / "vit_digits.cnn").eval()
    x = torch.randn(3, *c.graph.input_shape)
    expected = whole(x)
    for cuts in ([1], [2], [token.id - 1], list(plan.cuts)):
        y = x
        for stage in split(whole, c.graph, cuts):
            y = stage.module.eval()(y)
        torch.testing.assert_close(y, expected, rtol=0, atol=0, msg=str(cuts))


#: A network whose aux head is written after the classifier: the head reads the output.
AUX_AFTER_OUTPUT = """
network N { input: 4 x 8 x 8
 conv(4, 3, padding = 1); relu; flatten; linear(10)
 aux(weight = 0.3) { linear(10) } }
"""


def test_no_boundary_falls_at_or_after_the_output() -> None:
    """The last stage computes the output, so an aux head after it is part of that stage, not a stage
    of its own with the logits as its boundary; a marker after the output is an error."""
    c = analyse(AUX_AFTER_OUTPUT)
    g = c.graph
    assert g.output == 4 and len(g.nodes) == 6
    assert legal_cut_points(g) == [1, 2, 3]
    plan = plan_pipeline(g, 4, analysis=c.analysis)
    assert plan.cuts == (1, 2, 3) and plan.legal == 3
    assert plan.stages[-1].nodes == (4, 5) and plan.stages[-1].aux == ("aux1",)
    assert plan.stages[-1].boundary is None and plan.stages[-2].boundary == (256,)
    with pytest.raises(PipelineError) as e:
        plan_pipeline(g, 5)
    assert e.value.code == "E701" and "3 legal cut points, so at most 4 stages" in e.value.message
    marked = AUX_AFTER_OUTPUT.replace("linear(10)\n", "linear(10); cut\n", 1)
    e2 = _error(marked, 2)
    assert e2.code == "E702" and "follows the network's output" in e2.message


def test_a_marker_at_the_end_of_an_aux_head_names_the_one_tensor_that_crosses() -> None:
    """One tensor crosses there, but not the output of the layer before the marker: the message
    names it (it said "1 tensors, not one:  and ...") and the help is about aux heads, not joins."""
    e = _error(
        "network N { input: 4 x 8 x 8\n conv(4, 3, padding = 1); relu\n"
        " aux(weight = 0.3) { flatten; linear(10); cut }\n conv(4, 3, padding = 1); relu; flatten; linear(10) }",
        2,
    )
    assert e.code == "E702" and e.span is not None and (e.span.line, e.span.col) == (3, 43)
    assert e.message == (
        "a pipeline boundary at this cut marker would pass 4×8×8 from `1` (relu), not the output of `3` (linear) "
        "before the marker, which no later layer reads"
    )
    assert e.help is not None and "aux head" in e.help and "residual" not in e.help
    assert [n.message for n in e.notes] == ["4×8×8 comes from `1` (relu)", "the aux head `aux1`"]


def test_a_marker_inside_an_aux_head_says_where_a_marker_may_go() -> None:
    e = _error(
        "network N { input: 4 x 8 x 8\n conv(4, 3, padding = 1); relu\n"
        " aux(weight = 0.3) { flatten; cut; linear(10) }\n conv(4, 3, padding = 1); relu; flatten; linear(10) }",
        2,
    )
    assert e.code == "E702" and "would pass 2 tensors, not one: 4×8×8 from `1` (relu) and 256 from" in e.message
    assert e.help is not None and "before the `aux` block" in e.help
