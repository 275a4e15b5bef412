"""The summary table: folding, depth, totals, JSON, and golden files compared exactly.

Regenerate the golden files with CNNSPEC_UPDATE_GOLDEN=1 python -m pytest tests/test_summary.py.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from cnnspec.api import analyse
from cnnspec.cli import main
from cnnspec.report import Report, build_report
from cnnspec.summary import format_report, format_rich

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "summaries"

CASES = {
    "lenet5": ("lenet5.cnn", {}),
    "alexnet": ("alexnet.cnn", {}),
    "googlenet": ("googlenet.cnn", {}),
    "resnet18-depth2": ("resnet18.cnn", {"depth": 2}),
    "resnet152": ("resnet152.cnn", {}),
    "resnet50-batch32": ("resnet50.cnn", {"batch": 32}),
}


def report_for(spec: str, **view: object) -> Report:
    c = analyse(SPECS / spec)
    return build_report(c.graph, c.analysis, c.warnings, **view)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_summary(case: str) -> None:
    spec, view = CASES[case]
    text = format_report(report_for(spec, **view)) + "\n"
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("CNNSPEC_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with CNNSPEC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_resnet152_folds_identical_bottlenecks_and_keeps_the_first_apart() -> None:
    r = report_for("resnet152.cnn")
    rows = {row.path: row for row in r.table}
    assert rows["layer3"].op == "Stage: Bottleneck ×36"
    assert rows["layer3.0"].op == "Bottleneck" and rows["layer3.0"].kind == "group"
    fold = rows["layer3.1-35"]
    assert (fold.kind, fold.op, fold.count, fold.output_shape) == ("fold", "Bottleneck ×35", 35, [1024, 14, 14])
    # A fold's numbers are the sums over its instances.
    inside = [x for x in r.layers if x.path.split(".")[0] == "layer3" and x.path.split(".")[1] not in ("0",)]
    assert fold.params == sum(x.params for x in inside)
    assert fold.macs == sum(x.macs for x in inside)
    assert {f.path: f.count for f in r.folds} == {"layer1.1-2": 2, "layer2.1-7": 7, "layer3.1-35": 35, "layer4.1-2": 2}


def test_table_columns_add_up_to_the_totals_at_any_depth() -> None:
    for view in ({}, {"depth": 0}, {"depth": 1}, {"depth": None}, {"expand": True, "depth": None}):
        r = report_for("resnet50.cnn", batch=4, **view)
        assert sum(row.params for row in r.table) == r.total_params
        assert sum(row.macs for row in r.table) == r.macs
        assert sum(row.activation_bytes for row in r.table) == r.activation_bytes


def test_expand_shows_every_layer_and_depth_zero_only_the_top() -> None:
    r = report_for("resnet152.cnn", depth=None, expand=True)
    assert sum(row.kind == "layer" for row in r.table) == len(r.layers) == 515
    assert not any(row.kind == "fold" for row in r.table)
    top = report_for("resnet152.cnn", depth=0)
    assert [row.path for row in top.table][:6] == ["conv1", "bn1", "2", "maxpool", "layer1", "layer2"]
    assert all(row.level == 0 for row in top.table)


def test_blocks_with_different_arguments_do_not_fold() -> None:
    text = """block B(c) { conv(c, 3, padding = 1); relu }
network N { input: 3 x 8 x 8
  a: B(4); b: B(4); c: B(8); d: B(8); e: B(8) }"""
    c = analyse(text)
    r = build_report(c.graph, c.analysis, depth=None)
    ops = [(row.path, row.op) for row in r.table if row.level == 0]
    # a (3 → 4 channels) differs from b (4 → 4), c (4 → 8) from d and e (8 → 8): only d and e fold.
    assert ops == [("a", "B"), ("b", "B"), ("c", "B"), ("d-e", "B ×2")]


def test_totals_state_memory_flops_and_the_convention_once() -> None:
    r = report_for("resnet50.cnn", batch=8)
    assert r.param_bytes_fp32 == 4 * r.total_params and r.param_bytes_bf16 == 2 * r.total_params
    assert r.flops == 2 * r.macs
    text = format_report(r)
    assert text.count("FLOPs = 2 × MACs") == 1
    assert "at batch 8" in text
    assert sum(s.macs for s in r.stages) == r.macs
    assert [s.resolution for s in r.stages][:3] == ["112×112", "56×56", "28×28"]


def test_json_report_carries_everything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SPECS / "googlenet.cnn"), "--json", "--batch", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("network", "input_shape", "output_shape", "total_params", "trainable_params", "buffers", "macs",
                "layers", "flops", "param_bytes_fp32", "param_bytes_bf16", "activation_bytes", "stages", "groups",
                "folds", "table", "mac_convention"):
        assert key in data, key
    layer = data["layers"][0]
    for key in ("path", "op", "output_shape", "params", "macs", "receptive_field", "jump", "activation_bytes"):
        assert key in layer, key
    assert data["batch"] == 2
    assert data["macs"] == 1498376192


def test_cli_depth_and_expand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SPECS / "resnet152.cnn")]) == 0
    folded = capsys.readouterr().out
    assert "layer3.1-35" in folded and "Bottleneck ×35" in folded
    assert main(["check", str(SPECS / "resnet152.cnn"), "--expand"]) == 0
    expanded = capsys.readouterr().out
    assert "layer3.35.conv3" in expanded and "×35" not in expanded
    assert main(["check", str(SPECS / "resnet152.cnn"), "--depth", "-1"]) == 2
    assert "--depth" in capsys.readouterr().err
    assert main(["check", str(SPECS / "resnet152.cnn"), "--batch", "0"]) == 2


def test_rich_rendering_has_the_same_rows() -> None:
    r = report_for("resnet18.cnn")
    buf = io.StringIO()
    format_rich(r, file=buf)
    out = buf.getvalue()
    for row in r.table:
        assert row.path in out
    assert "FLOPs" in out


def test_check_does_not_import_torch_or_rich() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from cnnspec.cli import main; main(['check', {!r}]); "
        "bad = [m for m in ('torch', 'rich') if m in sys.modules]; sys.exit(1 if bad else 0)"
    ).format(str(SPECS / "resnet50.cnn"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
