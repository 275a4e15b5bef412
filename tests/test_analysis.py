"""Analysis that is right: receptive fields by hand, MACs against fvcore and torchvision, activation memory
against what autograd really saves."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cnnspec.api import analyse

SPECS = Path(__file__).resolve().parent.parent / "specs"

#: torchvision's published GMACs (its model cards' "GFLOPS", which are multiply-adds).
TORCHVISION_GMACS = {"alexnet": 0.714, "vgg16": 15.47, "googlenet": 1.498, "resnet50": 4.089, "resnet152": 11.514}


def rf_by_path(spec: str, **kw: object) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    c = analyse(SPECS / spec, **kw)
    return {n.path: (c.analysis.receptive[n.id].rf, c.analysis.receptive[n.id].jump) for n in c.graph.nodes}


def test_three_stacked_3x3_convolutions_see_what_one_7x7_sees() -> None:
    text = """
network Three { input: 3 x 32 x 32
  a: conv(8, 3, padding = 1); b: conv(8, 3, padding = 1); c: conv(8, 3, padding = 1) }
network One { input: 3 x 32 x 32
  a: conv(8, 7, padding = 3) }
"""
    three = analyse(text, "Three")
    one = analyse(text, "One")
    rf3 = [three.analysis.receptive[n.id].rf for n in three.graph.layers()]
    assert rf3 == [(3, 3), (5, 5), (7, 7)]
    assert one.analysis.receptive[one.graph.nodes[-1].id].rf == (7, 7)


def test_alexnet_receptive_fields_by_hand() -> None:
    # rf += (k-1)·jump, jump *= stride: 11/4, pool 3/2, 5/1, pool 3/2, 3, 3, 3, pool 3/2.
    rf = rf_by_path("alexnet.cnn")
    expected = {
        "features.0": ((11, 11), (4, 4)),
        "features.2": ((19, 19), (8, 8)),
        "features.3": ((51, 51), (8, 8)),
        "features.5": ((67, 67), (16, 16)),
        "features.6": ((99, 99), (16, 16)),
        "features.8": ((131, 131), (16, 16)),
        "features.10": ((163, 163), (16, 16)),
        "features.12": ((195, 195), (32, 32)),
    }
    for path, want in expected.items():
        assert rf[path] == want, path
    # The 6×6 adaptive pool over a 6×6 map is 1×1 windows: nothing widens.
    assert rf["avgpool"] == ((195, 195), (32, 32))


def test_vgg16_receptive_fields_by_hand() -> None:
    rf = rf_by_path("vgg16.cnn")
    # Each 3×3 conv adds 2·jump; each 2×2/2 pool adds jump and doubles it.
    want_convs = [3, 5, 10, 14, 24, 32, 40, 60, 76, 92, 132, 164, 196]
    c = analyse(SPECS / "vgg16.cnn")
    convs = [c.analysis.receptive[n.id].rf[0] for n in c.graph.layers() if n.kind == "conv"]
    assert convs == want_convs
    assert rf["features.30"] == ((212, 212), (32, 32))


def test_dilation_and_rectangular_kernels() -> None:
    c = analyse("network N { input: 1 x 64 x 64\n conv(4, [3, 5], dilation = 2); conv(4, 3, stride = 2); conv(4, 3) }")
    rfs = [(c.analysis.receptive[n.id].rf, c.analysis.receptive[n.id].jump) for n in c.graph.layers()]
    assert rfs == [((5, 9), (1, 1)), ((7, 11), (2, 2)), ((11, 15), (2, 2))]


def test_a_join_sees_its_widest_branch() -> None:
    c = analyse("network N { input: 1 x 32 x 32\n concat { conv(4, 1); conv(4, 5, padding = 2) } }")
    join = c.graph.nodes[-1]
    assert join.kind == "concat"
    assert c.analysis.receptive[join.id].rf == (5, 5)


def test_a_gate_broadcast_from_1x1_widens_the_field_but_keeps_the_grid() -> None:
    # Squeeze-and-excitation: the gate's global pool sees the whole 8×8 map of the first conv
    # (3 + 7·2 = 17) with a jump of 16, but the product is on the conv's grid (jump 2), so the
    # next 3×3 conv adds 2·2, not 2·16.
    text = """
network SE {
    input: 3 x 16 x 16
    a: conv(8, 3, stride = 2, padding = 1)
    gate: mul { {}; { adaptive_avgpool(1); conv(8, 1); sigmoid } }
    b: conv(8, 3, padding = 1)
}
"""
    c = analyse(text)
    rf = {n.path: (c.analysis.receptive[n.id].rf, c.analysis.receptive[n.id].jump) for n in c.graph.nodes}
    assert rf["a"] == ((3, 3), (2, 2))
    assert rf["gate.0"] == ((17, 17), (16, 16))  # the pool
    assert rf["gate.mul"] == ((17, 17), (2, 2))
    assert rf["b"] == ((21, 21), (2, 2))


def test_efficientnet_receptive_fields_stay_within_a_few_times_the_input() -> None:
    # Every MBConv has a squeeze-and-excitation gate. When a gate's jump leaked into the grid,
    # each later layer multiplied it: the last layers reported fields of 10^21 pixels.
    c = analyse(SPECS / "efficientnet_b0.cnn")
    assert max(c.analysis.receptive[n.id].rf[0] for n in c.graph.nodes) < 20 * 224
    assert c.analysis.receptive[c.graph.output].jump == (224, 224)  # 32, then the global pool's 7


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "googlenet", "resnet50", "resnet152"])
def test_macs_match_torchvision_within_1_percent(name: str) -> None:
    macs = analyse(SPECS / f"{name}.cnn").analysis.total_macs
    assert abs(macs / 1e9 - TORCHVISION_GMACS[name]) / TORCHVISION_GMACS[name] < 0.01


def _fvcore(name: str) -> tuple[int, dict[str, int], int]:
    torch = pytest.importorskip("torch")
    fvcore = pytest.importorskip("fvcore.nn")
    from cnnspec.backends.fx import to_graph_module

    c = analyse(SPECS / f"{name}.cnn")
    gm = to_graph_module(c.graph).eval()
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    fa = fvcore.FlopCountAnalysis(gm, torch.zeros(1, *c.graph.input_shape))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    return c.analysis.total_macs, dict(fa.by_operator()), int(fa.total())


@pytest.mark.parametrize(
    "name", ["lenet5", "alexnet", "googlenet", pytest.param("vgg16", marks=pytest.mark.slow),
             pytest.param("resnet50", marks=pytest.mark.slow)]
)
def test_macs_match_fvcore(name: str) -> None:
    ours, by_op, total = _fvcore(name)
    # Like for like: fvcore's conv and linear counts are multiply-adds, exactly ours.
    assert ours == by_op.get("conv", 0) + by_op.get("linear", 0) + by_op.get("addmm", 0)
    # Its total adds batch norm and pooling (docs/analysis.md); that stays within 1%.
    assert abs(total - ours) / total < 0.01


def measure_saved_bytes(gm: object, x: object) -> int:
    """Bytes of the unique non-parameter storages autograd saves in one training forward."""
    import torch

    assert isinstance(gm, torch.nn.Module)
    owned = {t.untyped_storage().data_ptr() for t in [*gm.parameters(), *gm.buffers()]}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in owned:
            seen[s.data_ptr()] = s.nbytes()
        return t

    gm.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        gm(x)
    return sum(seen.values())


@pytest.mark.parametrize(
    ("name", "shape"),
    [("lenet5", None), ("alexnet", None), ("alexnet2012", None), ("resnet18", (3, 64, 64)),
     ("googlenet", (3, 96, 96)), ("vgg11", (3, 64, 64))],
)
def test_activation_memory_matches_what_autograd_saves_on_cpu(name: str, shape: tuple[int, ...] | None) -> None:
    torch = pytest.importorskip("torch")
    from cnnspec.backends.fx import to_graph_module

    c = analyse(SPECS / f"{name}.cnn", input_shape=shape)
    gm = to_graph_module(c.graph)
    torch.manual_seed(0)
    for batch in (1, 3):
        measured = measure_saved_bytes(gm, torch.randn(batch, *c.graph.input_shape))
        assert c.analysis.activation_bytes(batch) == measured


def test_activation_memory_of_norms_dropout_and_friends() -> None:
    torch = pytest.importorskip("torch")
    from cnnspec.backends.fx import to_graph_module

    text = """network N { input: 8 x 16 x 16
      conv(8, 3, padding = 1); groupnorm(4); gelu; layernorm; silu; avgpool(2)
      adaptive_maxpool(4); mul { sigmoid; tanh }; adaptive_avgpool(2); stochastic_depth(0.2)
      flatten; dropout(0.3); linear(10); softmax }"""
    c = analyse(text)
    gm = to_graph_module(c.graph)
    assert c.analysis.activation_bytes(2) == measure_saved_bytes(gm, torch.randn(2, 8, 16, 16))


# ------------------------------------------------------------ the IR: immutable nodes, PASSES, cut points


def _cuts_by_definition(graph) -> list[int]:
    """The cut points as the definition states them: every later node reads only p or nodes after it."""
    nodes = graph.nodes
    return [p for p in range(len(nodes)) if all(i >= p for n in nodes[p + 1 :] for i in n.inputs)]


def _instance_ids(graph, kind: str, name: str) -> list[list[int]]:
    """The node ids of each instance of a block, in order."""
    out = []
    for path, group in graph.groups.items():
        if group.kind == kind and group.name == name:
            out.append([n.id for n in graph.nodes if n.scope == path or n.scope.startswith(path + ".")])
    return out


def test_nodes_are_immutable_once_built() -> None:
    c = analyse(SPECS / "resnet18.cnn")
    node = c.graph.nodes[5]
    with pytest.raises(AttributeError):  # a named tuple's fields cannot be set
        node.path = "renamed"  # type: ignore[misc]
    assert not hasattr(node, "__dict__")  # slots: no attribute besides the fields


def test_analyze_runs_every_pass_listed_in_passes() -> None:
    from cnnspec.analysis import PASSES, analyze

    c = analyse(SPECS / "googlenet.cnn")
    a = analyze(c.graph)
    assert [name for name, _ in PASSES] == ["params", "macs", "saved", "receptive", "channels"]
    for name, run in PASSES:
        assert getattr(a, name) == run(c.graph)
        assert len(getattr(a, name)) == len(c.graph.nodes)


def test_every_node_of_a_plain_chain_is_a_cut_point() -> None:
    c = analyse(SPECS / "lenet5.cnn")
    assert c.graph.cut_points() == list(range(len(c.graph.nodes)))


def test_resnet18_cuts_between_residual_blocks_never_inside_one() -> None:
    g = analyse(SPECS / "resnet18.cnn").graph
    cuts = set(g.cut_points())
    blocks = _instance_ids(g, "block", "BasicBlock")
    assert len(blocks) == 8
    for ids in blocks:
        (join,) = [i for i in ids if g.nodes[i].skip]  # the add the shortcut enters
        assert not cuts & set(range(ids[0], join)), ids  # the shortcut crosses every point before it
        assert {ids[0] - 1, join, ids[-1]} <= cuts  # the block's input, its sum, its output: one tensor
    assert g.cut_points() == _cuts_by_definition(g)


def test_googlenet_cuts_between_inception_modules_never_inside_one() -> None:
    g = analyse(SPECS / "googlenet.cnn").graph
    cuts = set(g.cut_points())
    modules = _instance_ids(g, "block", "Inception")
    assert len(modules) == 9
    for ids in modules:
        assert not cuts & set(ids[:-1]), ids  # four branches run side by side until the concat
        assert ids[-1] in cuts
    assert g.cut_points() == _cuts_by_definition(g)


@pytest.mark.parametrize("spec", ["densenet121", "inception_v3", "efficientnet_b0", "mobilenet_v2"])
def test_cut_points_match_their_definition(spec: str) -> None:
    g = analyse(SPECS / f"{spec}.cnn").graph
    cuts = g.cut_points()
    assert cuts == _cuts_by_definition(g)
    assert cuts[0] == 0 and cuts[-1] == len(g.nodes) - 1


def test_the_channel_dim_follows_permute_transpose_flatten_and_select() -> None:
    from cnnspec.analysis import analyze

    spec = """network Moves {
    input: 8 x 6 x 4
    conv(16, 1)
    permute([0, 2, 3, 1])
    linear(32)
    transpose(1, 2)
    flatten(2, 3)
    transpose(1, 2)
    select(1, 0)
}"""
    c = analyse(spec)
    channels = analyze(c.graph).channels
    shapes = [n.out_shape for n in c.graph.nodes]
    assert shapes == [(8, 6, 4), (16, 6, 4), (6, 4, 16), (6, 4, 32), (4, 6, 32), (4, 192), (192, 4), (4,)]
    # input and conv: C×H×W; permute: channels last; linear keeps them there; transpose(1, 2) swaps H
    # and W only; flatten(2, 3) merges W and C, so no dim holds the channels any more.
    assert channels == [0, 0, 2, 2, 2, None, None, None]


def test_tokens_keep_their_features_dim() -> None:
    from cnnspec.analysis import analyze

    c = analyse("network T {\n    input: 3 x 32 x 32\n    conv(64, 4, stride = 4)\n    flatten(2)\n"
                "    transpose(1, 2)\n    select(1, 0)\n}")
    assert analyze(c.graph).channels == [0, 0, 0, 1, 0]
