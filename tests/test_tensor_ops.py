"""The tensor ops of the layer table (cnnspec.layers.tensor) against torch: shapes a real tensor takes,
parameters, MACs by hand, what autograd saves, the receptive field stated where defined and not
defined past a layout change, and ConvNeXt's LayerNorm2d against torchvision's."""

from __future__ import annotations

import math

import pytest
import torch
from support import assert_static_shapes
from test_analysis import measure_saved_bytes

import cnnspec
from cnnspec.api import analyse
from cnnspec.backends.fx import to_graph_module
from cnnspec.backends.pysource import python_source

#: Small bodies of the networks the ops are for, each op at least once.
NETS = {
    "convnext": """network N { input: 8 x 16 x 16
        conv(8, 7, padding = 3, groups = 8); permute([0, 2, 3, 1]); layernorm(1e-6, over = "last")
        linear(32); gelu; linear(8); permute([0, 3, 1, 2])
        layernorm(1e-6, over = "channels"); conv(16, 2, stride = 2); mean([2, 3]); linear(3) }""",
    "vit": """network N { input: 3 x 16 x 16
        conv(8, 4, stride = 4); flatten(2); transpose(1, 2); layernorm(over = "last"); linear(8); gelu
        select(1, 0); linear(4) }""",
    "swin": """network N { input: 8 x 14 x 14
        conv(8, 1); permute([0, 2, 3, 1]); pad([0, 0, 0, 2, 0, 2]); roll([-2, -2], [1, 2])
        reshape([4, 4, 4, 4, 8]); permute([0, 1, 3, 2, 4, 5]); reshape([16, 16, 8]); linear(8)
        reshape([256, 8]); slice(1, 0, step = 2); linear(8) }""",
    "patch_merging": """network N { input: 8 x 14 x 14
        concat { slice(2, 0, step = 2); slice(2, 1, step = 2) }; slice(3, 1, 13, 2); relu
        permute([0, 2, 3, 1]); layernorm(over = "last"); linear(8, bias = false) }""",
    "patch_merging_last": """network N { input: 8 x 14 x 14
        permute([0, 2, 3, 1])
        concat(dim = -1) { slice(1, 0, step = 2); slice(1, 1, step = 2) }; relu
        concat(-2) { identity; linear(16) }; layernorm(over = "last"); linear(8, bias = false) }""",
    "split_join": """network N { input: 8 x 8 x 8
        conv(8, 1); split(2) { identity; { conv(4, 1); batchnorm; relu } }; channel_shuffle(2)
        split([3, 5], dim = 1) { relu; conv(5, 3, padding = 1) }
        split(2, dim = -2) { relu; sigmoid }; flatten; linear(3) }""",
    "split": """network N { input: 8 x 8 x 8
        conv(8, 3, padding = 1); concat { chunk(2, 0); { chunk([3, 5], 1, dim = 1); conv(4, 1) } }
        channel_shuffle(2); relu; upsample(); conv(4, 3); upsample(size = [9, 9], mode = "bilinear")
        conv(4, 1); conv_transpose(4, 3, stride = 2, output_padding = 1, groups = 2); relu
        mean([2, 3], keepdim = true); sigmoid; flatten; linear(3) }""",
    "views": """network N { input: 8 x 8 x 8
        conv(8, 3, padding = 1); select(1, 2); relu; transpose(1, 2); sigmoid; flatten(1); tanh
        reshape([4, 16]); linear(2) }""",
    "inferred_size": """network N { input: 8 x 6 x 6
        conv(8, 1); reshape([8, -1]); transpose(1, 2); linear(4); reshape([-1, 3, 4]); relu; flatten; linear(3) }""",
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_static_shapes_and_parameters_are_torchs(name: str) -> None:
    report = cnnspec.check(NETS[name])
    gm = cnnspec.compile(NETS[name])
    assert_static_shapes(report, gm, torch.randn(2, *report.input_shape))
    assert sum(p.numel() for p in gm.parameters()) == report.total_params
    for row in report.layers:
        if row.params:
            assert sum(p.numel() for p in gm.get_submodule(row.path).parameters()) == row.params, row.path


@pytest.mark.parametrize("name", sorted(NETS))
def test_activation_memory_of_tensor_ops_matches_what_autograd_saves(name: str) -> None:
    c = analyse(NETS[name])
    gm = to_graph_module(c.graph)
    torch.manual_seed(0)
    for batch in (1, 3):
        assert c.analysis.activation_bytes(batch) == measure_saved_bytes(gm, torch.randn(batch, *c.graph.input_shape))


def test_macs_of_linear_on_any_rank_and_of_conv_transpose() -> None:
    rows = cnnspec.check(NETS["convnext"]).layers
    assert rows[3].op == "linear" and rows[3].macs == 16 * 16 * 8 * 32  # each of 16×16 positions: 8×32
    assert rows[3].params == 8 * 32 + 32
    rows = cnnspec.check(NETS["split"]).layers
    (ct,) = [r for r in rows if r.op == "conv_transpose"]
    # 4 input channels at 9×9, each into a 3×3 kernel of 4 / 2 outputs of its group.
    assert ct.macs == 4 * 9 * 9 * 2 * 3 * 3 and ct.params == 4 * 2 * 3 * 3 + 4
    assert ct.output_shape == [4, 20, 20]  # (9 − 1)·2 + (3 − 1) + 1 + output_padding 1


def test_receptive_field_is_stated_where_defined_and_not_past_a_layout_change() -> None:
    rows = cnnspec.check(NETS["convnext"]).layers
    assert rows[0].receptive_field == [7, 7]
    assert all(r.receptive_field == [] and r.jump == [] for r in rows[1:])  # past the permute
    rows = cnnspec.check(NETS["patch_merging"]).layers
    by_op = [(r.op, r.receptive_field, r.jump) for r in rows]
    # A strided slice of the height is a 1-wide window of stride 2; the channels-last permute ends it.
    assert by_op[0] == ("slice", [1, 1], [2, 1]) and by_op[3] == ("slice", [1, 1], [2, 2])
    assert by_op[5][1] == [] and by_op[-1][1] == []
    summary = cnnspec.check(NETS["patch_merging"]).summary
    assert "n/a" in summary
    rows = cnnspec.check("network N { input: 4 x 9 x 9\n conv(4, 3); mean([-2, -1]) }").layers
    assert rows[1].receptive_field == [9, 9]  # over the height and width: the whole map
    rows = cnnspec.check("network N { input: 4 x 9 x 9\n conv(4, 3); permute([0, 1, 2, 3]); pad([1, 1]) }").layers
    assert [r.receptive_field for r in rows] == [[3, 3], [3, 3], [3, 3]]  # no layout change


def test_flatten_with_start_and_end() -> None:
    rows = cnnspec.check("network N { input: 4 x 6 x 5\n flatten(2); flatten(1, 1); flatten }").layers
    assert [r.output_shape for r in rows] == [[4, 30], [4, 30], [120]]


def test_reshape_works_out_a_size_given_as_minus_one_as_torch_does() -> None:
    """The node keeps the worked-out sizes, so every stage after elaboration (fx, .py export, the
    summary) reads plain ones; the compiled module's output is torch's own reshape with the -1."""
    spec = "network N { input: 8 x 6 x 6\n reshape([8, -1]); reshape([-1, 2, 4]) }"
    graph = analyse(spec).graph
    assert [n.attrs["shape"] for n in graph.layers()] == [[8, 36], [36, 2, 4]]
    assert [r.output_shape for r in cnnspec.check(spec).layers] == [[8, 36], [36, 2, 4]]
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(cnnspec.compile(spec)(x), x.reshape(2, 8, -1).reshape(2, -1, 2, 4))
    source = python_source(to_graph_module(graph), graph)
    assert "[-1, 8, 36]" in source and "[-1, 36, 2, 4]" in source


def test_layernorm_over_channels_is_torchvisions_layernorm2d() -> None:
    tv = pytest.importorskip("torchvision.models.convnext")
    gm = cnnspec.compile('network N { input: 8 x 5 x 6\n ln: layernorm(1e-6, over = "channels") }').eval()
    theirs = tv.LayerNorm2d(8, eps=1e-6).eval()
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 2)
        theirs.bias.uniform_(-1, 1)
    gm.load_state_dict({f"ln.{k}": v for k, v in theirs.state_dict().items()}, strict=True)
    x = torch.randn(2, 8, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), theirs(x), rtol=0, atol=1e-6)


def test_patch_merging_picks_what_swins_slices_pick() -> None:
    # torchvision's _patch_merging_pad on a channels-last map: x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], ...
    text = """network N { input: 4 x 6 x 6
        concat { { slice(2, 0, step = 2); slice(3, 0, step = 2) }; { slice(2, 1, step = 2); slice(3, 0, step = 2) }
                 { slice(2, 0, step = 2); slice(3, 1, step = 2) }; { slice(2, 1, step = 2); slice(3, 1, step = 2) } }
        permute([0, 2, 3, 1]) }"""
    gm = cnnspec.compile(text)
    x = torch.randn(2, 4, 6, 6)
    c = x.permute(0, 2, 3, 1)
    want = torch.cat([c[..., 0::2, 0::2, :], c[..., 1::2, 0::2, :], c[..., 0::2, 1::2, :], c[..., 1::2, 1::2, :]], -1)
    assert torch.equal(gm(x), want)
    assert math.prod(want.shape[1:]) == 144


def test_concat_along_the_last_dim_is_swins_patch_merging() -> None:
    # torchvision's PatchMerging: x0..x3 = x[..., 0::2, 0::2, :], ...; torch.cat([x0, x1, x2, x3], -1)
    text = """network N { input: 4 x 6 x 6
        permute([0, 2, 3, 1])
        concat(dim = -1) {
            { slice(1, 0, step = 2); slice(2, 0, step = 2) }; { slice(1, 1, step = 2); slice(2, 0, step = 2) }
            { slice(1, 0, step = 2); slice(2, 1, step = 2) }; { slice(1, 1, step = 2); slice(2, 1, step = 2) }
        } }"""
    gm = cnnspec.compile(text)
    x = torch.randn(2, 4, 6, 6)
    c = x.permute(0, 2, 3, 1)
    want = torch.cat([c[..., 0::2, 0::2, :], c[..., 1::2, 0::2, :], c[..., 0::2, 1::2, :], c[..., 1::2, 1::2, :]], -1)
    assert torch.equal(gm(x), want)
    assert list(cnnspec.check(text).layers[-1].output_shape) == [3, 3, 16]


def test_split_hands_each_branch_its_chunk_as_shufflenet() -> None:
    # torchvision's ShuffleNetV2 block, stride 1: x1, x2 = x.chunk(2, dim=1); cat((x1, branch2(x2)), dim=1)
    text = """network N { input: 8 x 6 x 6
        split(2) { identity; branch2: { conv(4, 1); relu } }; channel_shuffle(2)
        split([2, 4], dim = -1) { sigmoid; tanh } }"""
    gm = cnnspec.compile(text)
    assert list(gm.state_dict()) == ["branch2.0.weight", "branch2.0.bias"]
    x = torch.randn(2, 8, 6, 6)
    x1, x2 = x.chunk(2, dim=1)
    conv = gm.get_submodule("branch2.0")
    y = torch.cat((x1, torch.relu(conv(x2))), dim=1)
    y = y.view(2, 2, 4, 6, 6).transpose(1, 2).reshape(2, 8, 6, 6)
    a, b = y.split([2, 4], dim=-1)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), torch.cat((a.sigmoid(), b.tanh()), dim=-1), rtol=0, atol=0)
    assert list(cnnspec.check(text).layers[-1].output_shape) == [8, 6, 6]
