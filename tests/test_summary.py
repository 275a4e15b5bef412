"""The summary table: folding, depth, totals, JSON, and golden files compared exactly.

Regenerate the golden files with CNNSPEC_UPDATE_GOLDEN=1 python -m pytest tests/test_summary.py.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from support import stock_specs

from cnnspec.api import analyse
from cnnspec.cli import main
from cnnspec.views.report import Report, build_report
from cnnspec.views.summary import format_report, format_rich

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "summaries"

#: name: (spec, network parameters, view).
CASES: dict[str, tuple[str, dict[str, object], dict[str, object]]] = {
    "lenet5": ("lenet5.cnn", {}, {}),
    "alexnet": ("alexnet.cnn", {}, {}),
    "googlenet": ("googlenet.cnn", {}, {}),
    "googlenet2014-aux": ("googlenet2014.cnn", {"aux_logits": True}, {}),
    "densenet121": ("densenet121.cnn", {}, {}),
    "resnet18-depth2": ("resnet18.cnn", {}, {"depth": 2}),
    "resnet152": ("resnet152.cnn", {}, {}),
    "resnet50-batch32": ("resnet50.cnn", {}, {"batch": 32}),
}


def report_for(spec: str, params: dict[str, object] | None = None, **view: object) -> Report:
    c = analyse(SPECS / spec, **(params or {}))
    return build_report(c.graph, c.analysis, c.warnings, **view)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_summary(case: str) -> None:
    spec, params, view = CASES[case]
    text = format_report(report_for(spec, params, **view)) + "\n"
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
  a: B(4); b: B(8); c: B(16); d: B(16); e: B(16) }"""
    c = analyse(text)
    r = build_report(c.graph, c.analysis, depth=None)
    ops = [(row.path, row.op) for row in r.table if row.level == 0]
    # Each width is an argument, so a, b and c stay apart; c (8 → 16 channels) differs from d and e
    # (16 → 16) only in its input channels, so c-e fold loosely and say so.
    assert ops == [("a", "B"), ("b", "B"), ("c-e", "B ×3 (channels vary)")]
    assert [(f.path, f.identical) for f in r.folds] == [("c-e", False)]


def test_identical_runs_keep_the_strict_fold() -> None:
    text = """block B(c) { conv(c, 3, padding = 1); relu }
network N { input: 8 x 8 x 8
  a: B(8); b: B(8); c: B(8) }"""
    c = analyse(text)
    r = build_report(c.graph, c.analysis, depth=None)
    assert [(row.path, row.op) for row in r.table] == [("a-c", "B ×3")]
    assert r.folds[0].identical and r.folds[0].varies == []


def test_densenet_folds_each_dense_block_loosely_and_says_so() -> None:
    r = report_for("densenet121.cnn", depth=None)
    folds = {f.path: f for f in r.folds}
    assert {p: (f.count, f.identical) for p, f in folds.items()} == {
        f"features.denseblock{b}.denselayer1-{n}": (n, False) for b, n in ((1, 6), (2, 12), (3, 24), (4, 16))
    }
    fold = folds["features.denseblock1.denselayer1-6"]
    inside = [x for x in r.layers if x.path.startswith("features.denseblock1.")]
    assert len(inside) == 6 * 8  # identity, norm1, relu1, conv1, norm2, relu2, conv2, concat
    assert (fold.params, fold.macs) == (sum(x.params for x in inside), sum(x.macs for x in inside))
    # The output of the last instance: 64 + 6 · 32 channels.
    assert fold.output_shape == [256, 56, 56]
    rows = {row.path: row for row in r.table}
    assert rows["features.denseblock1.denselayer1-6"].op == "DenseLayer ×6 (channels vary)"
    assert rows["features.denseblock1"].op == "DenseBlock: DenseLayer ×6"
    text = format_report(r)
    assert "channels vary" in text.splitlines()[1]  # the view note explains the mark
    assert "identical consecutive blocks" not in text.splitlines()[1]  # and claims no identical fold
    expanded = report_for("densenet121.cnn", depth=None, expand=True)
    assert "channels vary" not in format_report(expanded)


def test_blocks_differing_only_in_rates_fold_and_say_so() -> None:
    text = """block B(c, p) { conv(c, 3, padding = 1); dropout(p) }
network N { input: 8 x 8 x 8
  a: B(8, 0.1); b: B(8, 0.2); c: B(8, 0.3); d: B(16, 0.3); e: B(16, 0.4); f: B(16, 0.4) }"""
    c = analyse(text)
    r = build_report(c.graph, c.analysis, depth=None)
    # a-c differ in p only; d has other channels, so a run across c and d would hide a width the
    # block is given: d-f fold apart, and d's input channels (8) and p differ from e and f's.
    assert [(row.path, row.op) for row in r.table] == [
        ("a-c", "B ×3 (rates vary)"), ("d-f", "B ×3 (channels and rates vary)")]
    assert [(f.path, f.identical, f.varies) for f in r.folds] == [
        ("a-c", False, ["rates"]), ("d-f", False, ["channels", "rates"])]
    note = format_report(r).splitlines()[1]
    assert "rates vary" in note and "channels vary" in note


def test_a_rate_is_the_only_argument_a_fold_lets_vary() -> None:
    # A conv's kernel changes shapes and parameters, so instances with other kernels never fold;
    # stochastic depth's mode is no rate either, so neither do two that differ in it.
    text = """block B(k, mode) { conv(8, k, padding = k // 2); stochastic_depth(0.1, mode) }
network N { input: 8 x 8 x 8
  a: B(3, "row"); b: B(5, "row"); c: B(5, "batch") }"""
    c = analyse(text)
    r = build_report(c.graph, c.analysis, depth=None)
    assert not r.folds


def test_efficientnet_folds_blocks_whose_stochastic_depth_grows() -> None:
    r = report_for("efficientnet_b0.cnn", depth=None)
    folds = {f.path: f for f in r.folds}
    # Each stage's first block changes stride or width; the rest differ in their drop rate alone.
    assert {p: (f.count, f.varies) for p, f in folds.items()} == {
        f"features.{s}.1-{n - 1}": (n - 1, ["rates"]) for s, n in ((4, 3), (5, 3), (6, 4))
    }
    fold = folds["features.6.1-3"]
    inside = [x for x in r.layers if x.path.startswith(("features.6.1.", "features.6.2.", "features.6.3."))]
    assert (fold.params, fold.macs) == (sum(x.params for x in inside), sum(x.macs for x in inside))
    rows = {row.path: row for row in r.table}
    assert rows["features.6.1-3"].op == "MBConv ×3 (rates vary)"
    assert "rates vary" not in format_report(report_for("efficientnet_b0.cnn", depth=None, expand=True))


def test_parallel_branches_never_fold() -> None:
    # Two identical branches of one concat are siblings in the tree but not one after the other.
    text = """block B(c) { conv(c, 1); relu }
network N { input: 8 x 8 x 8
  concat { a: B(4); b: B(4); c: B(4) } }"""
    c = analyse(text)
    r = build_report(c.graph, c.analysis, depth=None)
    assert not r.folds
    assert [row.path for row in r.table if row.level == 0] == ["a", "b", "c", "concat"]


def test_aux_outputs_in_report_summary_and_totals() -> None:
    r = report_for("googlenet2014.cnn", {"aux_logits": True})
    plain = report_for("googlenet2014.cnn")
    assert [(a.name, a.node, a.output_shape, a.weight, a.layers) for a in r.aux_outputs] == [
        ("aux1", "aux1.fc2", [1000], 0.3, 8), ("aux2", "aux2.fc2", [1000], 0.3, 8)
    ]
    # The heads' parameters count in the totals; without them the network is the one without aux.
    assert r.aux_params == sum(a.params for a in r.aux_outputs) == 6_379_728
    assert r.total_params == 13_378_280 and r.total_params - r.aux_params == plain.total_params
    assert r.macs - r.aux_macs == plain.macs
    assert {x.aux for x in r.layers if x.path.startswith("aux1.")} == {"aux1"}
    assert all(x.aux == "" for x in r.layers if not x.path.startswith("aux"))
    # Stages: the heads get rows of their own instead of cutting the main path's 14×14 run in two.
    assert [s.resolution for s in r.stages][-2:] == ["aux1 head", "aux2 head"]
    assert [s.resolution for s in r.stages].count("14×14") == 1
    assert sum(s.macs for s in r.stages) == r.macs and sum(s.params for s in r.stages) == r.total_params
    rows = {row.path: row for row in r.table}
    assert (rows["aux1"].aux, rows["inception4a"].aux) == ("aux1", "")
    text = format_report(r)
    assert "AuxHead [aux1]" in text and "Inception [" not in text
    assert "aux heads:     6,379,728 of the parameters" in text and "without them 6,998,552 parameters" in text
    assert "auxiliary outputs (2; returned in training mode only" in text
    assert "aux heads" not in format_report(plain) and "auxiliary outputs" not in format_report(plain)
    buf = io.StringIO()
    format_rich(r, file=buf)
    assert "auxiliary outputs" in buf.getvalue() and "AuxHead [aux2]" in buf.getvalue()
    assert "rows marked [name]" in " ".join(buf.getvalue().split())  # text, not read as a markup tag


def test_googlenet_aux_parameters_match_torchvision() -> None:
    # torchvision.models.googlenet(aux_logits=True) has 13,004,888 parameters, 6,624,904 without the heads.
    r = report_for("googlenet.cnn", {"aux_logits": True})
    assert (r.total_params, r.total_params - r.aux_params) == (13_004_888, 6_624_904)


def test_unnamed_aux_head_is_found_by_its_wiring() -> None:
    text = """network N { input: 3 x 16 x 16
  c1: conv(8, 3, padding = 1); relu
  aux(weight = 0.5) { adaptive_avgpool(1); flatten; linear(10) }
  c2: conv(8, 3); adaptive_avgpool(1); flatten; fc: linear(10) }"""
    c = analyse(text)
    r = build_report(c.graph, c.analysis)
    assert [(a.name, a.layers, a.params, a.weight) for a in r.aux_outputs] == [("aux1", 3, 90, 0.5)]
    assert [x.path for x in r.layers if x.aux] == ["2", "3", "4"]
    assert [x.op for x in r.table if x.aux] == ["adaptive_avgpool", "flatten", "linear"]
    assert "linear [aux1]" in format_report(r)


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
    assert data["aux_outputs"] == [] and data["aux_params"] == 0


def test_json_report_lists_aux_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SPECS / "googlenet2014.cnn"), "--set", "aux_logits=true", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [{k: a[k] for k in ("name", "node", "output_shape", "weight")} for a in data["aux_outputs"]] == [
        {"name": "aux1", "node": "aux1.fc2", "output_shape": [1000], "weight": 0.3},
        {"name": "aux2", "node": "aux2.fc2", "output_shape": [1000], "weight": 0.3},
    ]
    assert data["aux_params"] == 6_379_728
    assert data["aux_outputs"][0]["line"] == 42


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


def test_the_plain_summary_leaves_pydantic_to_the_json_report() -> None:
    """pydantic's import is a third of a cold `cnnspec check`: only --json and cnnspec.check() need the model."""
    import subprocess
    import sys

    code = (
        "import sys; from cnnspec.cli import main; rc = main(['check', {!r}] + sys.argv[1:]); "
        "print('pydantic' in sys.modules, file=sys.stderr); sys.exit(rc)"
    ).format(str(SPECS / "resnet50.cnn"))
    for args, imported in (([], "False"), (["--json"], "True")):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines()[-1] == imported, args


@pytest.mark.parametrize("spec", [p.stem for p in stock_specs()])
def test_json_report_validates_against_the_report_schema(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema  # a dev dependency (pyproject's [dev] extra)

    from cnnspec.views.report import report_schema

    assert main(["check", str(SPECS / f"{spec}.cnn"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    schema = report_schema()
    jsonschema.validate(data, schema)
    # The schema pins what a reader may rely on: every key the dump has is required.
    assert set(schema["required"]) == set(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "layers": [{"path": 1}]}, schema)


def test_the_summary_imports_the_report_for_type_checking_only() -> None:
    """report.py renders itself with summary.py (Report.summary): summary.py must not import it back."""
    import ast

    import cnnspec.views.summary as summary

    tree = ast.parse(Path(summary.__file__).read_text())
    runtime = [n.module for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert "cnnspec.views.format" in runtime
    assert "cnnspec.views.report" not in runtime
