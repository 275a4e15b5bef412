"""Stage 3, the static passes: parameters, MACs, receptive fields, and the golden reports.

Each pass is checked against an independent count: parameters and buffers
against the torch modules the backend builds, MACs against hand formulas,
fvcore's operator counts and torchvision's published figures, receptive
fields against hand-derived values. The golden files under
tests/fixtures/reports/ pin every stock spec's essentials (shapes,
parameters, MACs, per-layer rows); regenerate them with
CNNSPEC_UPDATE_GOLDEN=1 after an intended change and review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from support import CANON, FIXTURES, SPECS, UPDATE_GOLDEN, stock_specs

import cnnspec
from cnnspec.api import analyse

ZOO = """
network Zoo {
    input: 6 x 20 x 20
    c1: conv(12, 3, padding = 1)
    c2: conv(12, [3, 5], stride = 2, padding = [1, 2], groups = 3, bias = false)
    dw: conv(12, 3, groups = 12)
    bn: batchnorm
    gn: groupnorm(4)
    ln: layernorm
    nbn: batchnorm(affine = false)
    lrn: lrn(3)
    relu
    pool: maxpool(2)
    ap: adaptive_avgpool(3)
    flatten
    fc1: linear(32)
    bn1: batchnorm
    drop: dropout(0.1)
    fc2: linear(5, bias = false)
}
"""


def _module_counts(module: torch.nn.Module) -> tuple[int, int]:
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    return params, buffers


# ---------------------------------------------------------------- parameters


def test_parameters_and_buffers_of_each_layer_kind_equal_torchs() -> None:
    report = cnnspec.check(ZOO)
    model = cnnspec.compile(ZOO)
    for row in report.layers:
        if row.op in ("flatten", "relu"):
            assert (row.params, row.buffers) == (0, 0)
            continue
        module = model.get_submodule(row.path)
        assert (row.params, row.buffers) == _module_counts(module), row.path
    assert report.total_params == sum(p.numel() for p in model.parameters())
    assert report.buffers == sum(b.numel() for b in model.buffers())


def test_parameter_formulas() -> None:
    rows = {r.path: r for r in cnnspec.check(ZOO).layers}
    assert rows["c1"].params == 12 * 6 * 3 * 3 + 12
    assert rows["c2"].params == 12 * (12 // 3) * 3 * 5
    assert rows["dw"].params == 12 * 1 * 3 * 3 + 12
    assert (rows["bn"].params, rows["bn"].buffers) == (2 * 12, 2 * 12 + 1)
    assert (rows["nbn"].params, rows["nbn"].buffers) == (0, 2 * 12 + 1)
    assert rows["gn"].params == 2 * 12
    c, h, w = rows["gn"].output_shape
    assert rows["ln"].params == 2 * c * h * w
    assert rows["fc1"].params == 12 * 3 * 3 * 32 + 32
    assert rows["fc2"].params == 32 * 5
    assert rows["lrn"].params == rows["pool"].params == rows["drop"].params == 0


@pytest.mark.parametrize("canon", list(CANON.values()), ids=list(CANON))
def test_canon_parameter_counts_are_torchvisions(canon: Any) -> None:
    report = cnnspec.check(canon.path)
    assert report.total_params == report.trainable_params == canon.params


def test_trainable_parameters_follow_overrides() -> None:
    base = cnnspec.check(SPECS / "resnet18.cnn").total_params
    ten = cnnspec.check(SPECS / "resnet18.cnn", num_classes=10).total_params
    assert base - ten == (512 + 1) * (1000 - 10)


# ---------------------------------------------------------------------- MACs


def test_mac_formulas() -> None:
    rows = {r.path: r for r in cnnspec.check(ZOO).layers}
    assert rows["c1"].macs == 12 * 20 * 20 * 6 * 3 * 3
    _, h, w = rows["c2"].output_shape
    assert (h, w) == (10, 10)
    assert rows["c2"].macs == 12 * h * w * (12 // 3) * 3 * 5
    _, h, w = rows["dw"].output_shape
    assert rows["dw"].macs == 12 * h * w * 1 * 3 * 3
    assert rows["fc1"].macs == 12 * 3 * 3 * 32
    assert rows["fc2"].macs == 32 * 5
    assert all(rows[p].macs == 0 for p in ("bn", "gn", "ln", "lrn", "8", "pool", "ap", "drop"))
    assert all(r.flops == 2 * r.macs for r in rows.values())


#: torchvision's published "GFLOPS" (GMACs by this convention), from its weights' metadata.
PUBLISHED_GMACS = {
    "alexnet": 0.714, "vgg11": 7.609, "vgg13": 11.308, "vgg16": 15.47, "vgg19": 19.632, "googlenet": 1.498,
    "resnet18": 1.814, "resnet34": 3.664, "resnet50": 4.089, "resnet101": 7.801, "resnet152": 11.514,
}


@pytest.mark.parametrize("name", list(PUBLISHED_GMACS))
def test_canon_macs_match_torchvisions_published_figures(name: str) -> None:
    macs = cnnspec.check(SPECS / f"{name}.cnn").macs
    published = PUBLISHED_GMACS[name]
    digits = len(str(published).split(".")[1])
    assert round(macs / 1e9, digits) == published


def test_published_figures_are_the_ones_torchvision_ships() -> None:
    from torchvision.models import get_model_weights

    for name, gmacs in PUBLISHED_GMACS.items():
        assert get_model_weights(name).DEFAULT.meta["_ops"] == pytest.approx(gmacs, abs=1e-9)


@pytest.mark.parametrize("name", ["lenet5", "alexnet2012", "resnet18", "googlenet"])
def test_macs_per_module_equal_fvcores_conv_and_linear_counts(name: str) -> None:
    from fvcore.nn import FlopCountAnalysis

    report = cnnspec.check(SPECS / f"{name}.cnn")
    model = cnnspec.compile(SPECS / f"{name}.cnn").eval()
    flops = FlopCountAnalysis(model, torch.randn(1, *report.input_shape))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    by_module = flops.by_module()
    counted = 0
    for row in report.layers:
        if row.op in ("conv", "linear"):
            assert row.macs == by_module[row.path], row.path
            counted += 1
    assert counted > 0
    ops = flops.by_operator()
    assert report.macs == ops["conv"] + ops.get("linear", 0) + ops.get("addmm", 0)


def test_macs_scale_with_the_input() -> None:
    # 224 -> 448 doubles every feature map's sides exactly (no rounding anywhere in ResNet-18).
    small = cnnspec.check(SPECS / "resnet18.cnn").macs
    big = cnnspec.check(SPECS / "resnet18.cnn", input_shape=(3, 448, 448)).macs
    fc = 512 * 1000
    assert big - fc == 4 * (small - fc)


# ---------------------------------------------------------- receptive fields


def test_receptive_fields_and_jumps() -> None:
    text = """
network RF {
    input: 1 x 64 x 64
    a: conv(1, 3)
    b: conv(1, 3)
    c: conv(1, 3, stride = 2)
    d: conv(1, 3)
    e: maxpool(2)
    f: conv(1, [1, 5], dilation = 2)
}
"""
    rows = {r.path: r for r in cnnspec.check(text).layers}
    assert rows["a"].receptive_field == [3, 3] and rows["a"].jump == [1, 1]
    assert rows["b"].receptive_field == [5, 5]
    assert rows["c"].receptive_field == [7, 7] and rows["c"].jump == [2, 2]
    assert rows["d"].receptive_field == [11, 11]
    assert rows["e"].receptive_field == [13, 13] and rows["e"].jump == [4, 4]
    # dilation 2 makes a 1x5 kernel span 1x9; the jump is 4.
    assert rows["f"].receptive_field == [13, 13 + 8 * 4]


def test_receptive_field_of_lenet5() -> None:
    rows = {r.path: r.receptive_field for r in cnnspec.check(SPECS / "lenet5.cnn").layers}
    assert rows["conv1"] == [5, 5] and rows["pool1"] == [6, 6]
    assert rows["conv2"] == [14, 14] and rows["pool2"] == [16, 16]


# ------------------------------------------------------------------ reports


def test_report_totals_are_the_sums_of_its_rows() -> None:
    for name in ("googlenet", "resnet50", "vgg16"):
        report = cnnspec.check(SPECS / f"{name}.cnn")
        assert report.total_params == sum(r.params for r in report.layers)
        assert report.buffers == sum(r.buffers for r in report.layers)
        assert report.macs == sum(r.macs for r in report.layers)
        assert report.flops == 2 * report.macs
        assert report.param_bytes_fp32 == 4 * report.total_params
        assert report.output_shape == report.layers[-1].output_shape


def test_report_rows_are_built_when_read_and_reports_compare_by_their_data() -> None:
    spec = SPECS / "resnet18.cnn"
    report = cnnspec.check(spec)
    assert "layers" not in report.__dict__  # not built by check
    rows = report.layers
    assert report.layers is rows  # built once, kept
    again = cnnspec.check(spec)
    assert report == again  # one has its rows built, the other not yet
    assert report.model_dump()["layers"] == [dataclasses.asdict(r) for r in rows]
    assert report != cnnspec.check(SPECS / "resnet34.cnn")


def test_activation_memory_is_affine_in_the_batch() -> None:
    # Per-sample tensors scale with the batch; batch norm's saved statistics do not.
    c = analyse(SPECS / "resnet18.cnn")
    one, two, four = (c.analysis.activation_bytes(b) for b in (1, 2, 4))
    assert 0 < one < two < four
    assert four - two == 2 * (two - one)
    per_sample = two - one
    assert per_sample > 4 * 3 * 224 * 224  # at least the input itself


# ------------------------------------------------------------ golden reports

GOLDEN = FIXTURES / "reports"


def essentials(report: cnnspec.Report) -> dict[str, Any]:
    """What the golden files pin: totals, shapes, and (path, op, shape, params) per layer."""
    return {
        "network": report.network,
        "input_shape": report.input_shape,
        "output_shape": report.output_shape,
        "total_params": report.total_params,
        "trainable_params": report.trainable_params,
        "buffers": report.buffers,
        "macs": report.macs,
        "layers": [[r.path, r.op, r.output_shape, r.params] for r in report.layers],
    }


def dump(data: dict[str, Any]) -> str:
    """JSON with one line per layer, so that a diff shows which layers changed."""
    head = {k: v for k, v in data.items() if k != "layers"}
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines.append('  "layers": [')
    rows = [f"    {json.dumps(row)}" for row in data["layers"]]
    lines.append(",\n".join(rows))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def test_dump_is_json_that_reads_back() -> None:
    data = essentials(cnnspec.check(SPECS / "lenet5.cnn"))
    assert json.loads(dump(data)) == data


@pytest.mark.parametrize("spec", list(stock_specs()), ids=[p.stem for p in stock_specs()])
def test_golden_report(spec: Path) -> None:
    data = essentials(cnnspec.check(spec))
    golden = GOLDEN / f"{spec.stem}.json"
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(dump(data))
        return
    expected = json.loads(_golden(spec.stem).read_text())
    for key in ("network", "input_shape", "output_shape", "total_params", "trainable_params", "buffers", "macs"):
        assert data[key] == expected[key], key
    assert len(data["layers"]) == len(expected["layers"])
    for got, want in zip(data["layers"], expected["layers"], strict=True):
        assert got == want
    assert data == expected


def test_every_golden_report_belongs_to_a_stock_spec() -> None:
    stems = {p.stem for p in stock_specs()}
    stale = sorted(p.name for p in GOLDEN.glob("*.json") if p.stem not in stems)
    assert not stale, f"golden reports without a stock spec: {stale}"


def _golden(stem: str) -> Path:
    """The golden report of a stock spec; a missing one fails the test (it must never pass vacuously)."""
    golden = GOLDEN / f"{stem}.json"
    if not golden.exists():
        pytest.fail(
            f"no golden report {golden.relative_to(FIXTURES.parent.parent)}: create it with "
            f"`CNNSPEC_UPDATE_GOLDEN=1 python -m pytest tests/test_passes.py -k golden`, review it and commit it"
        )
    return golden


def test_golden_parameter_counts_agree_with_the_canon() -> None:
    assert CANON, "no canonical parameter counts to compare with"
    for canon in CANON.values():
        data = json.loads(_golden(canon.spec).read_text())
        assert data["total_params"] == canon.params
        assert sum(row[3] for row in data["layers"]) == canon.params
        assert math.prod(data["output_shape"]) == 1000
