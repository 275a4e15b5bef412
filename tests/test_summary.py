"""The summary table: folding, depth, totals, JSON, and golden files compared exactly.

Regenerate the golden files with CNNSPEC_UPDATE_GOLDEN=1 python -m pytest tests/test_summary.py.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

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
    "vit_b_16": ("vit_b_16.cnn", {}, {}),
}


def report_for(spec: str, params: dict[str, object] | None = None, **view: object) -> Report:
    c = analyse(SPECS / spec, **(params or {}))
    return build_report(c.graph, c.analysis, c.warnings, **view)  # type: ignore[arg-type]


def view_note(text: str) -> str:
    """The note over the table (how far groups are opened, what is folded), its wrapped lines joined."""
    lines = text.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("module "))
    return " ".join(line.strip() for line in lines[1:end])


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
    note = view_note(format_report(r))
    assert "channels vary" in note  # the view note explains the mark
    assert "identical consecutive blocks" not in note  # and claims no identical fold
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
    note = view_note(format_report(r))
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


# ------------------------------------------------------------------ fitting the width


def rich_text(report: Report, width: int, terminal: bool = False) -> str:
    """format_rich's output at a console width, without colours unless terminal."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    buf = Terminal()
    format_rich(report, file=buf, width=width)
    return buf.getvalue()


def whole(cell: str, text: str) -> bool:
    """Whether cell appears in text as a whole token (not cut, not run into a neighbour)."""
    import re

    return re.search(r"(?<!\S)" + re.escape(cell) + r"(?!\S)", text) is not None


#: The widths the summary is checked at: narrow, a classic terminal, wider ones.
WIDTHS = (60, 80, 100, 160)


def shown_figures(data: dict[str, Any], text: str) -> list[tuple[str, str]]:
    """The figures of a JSON report that the summary text shows, as (what, text): every number of
    the tables' columns that the text kept (their headers say which), and the totals."""
    from cnnspec.views.format import human, nbytes

    lines = text.splitlines()
    main_header = next(line for line in lines if line.startswith("module "))
    stage_header = next(line for line in lines if line.startswith("stage "))
    figures = [("total params", f"{data['total_params']:,}"), ("total MACs", f"{data['macs']:,}")]
    for row in data["table"]:
        opened = row["kind"] == "open"
        values = {
            "params": f"{row['subtotal_params'] if opened else row['params']:,}",
            "MACs": human(row["subtotal_macs"] if opened else row["macs"]),
            "act. mem": nbytes(row["subtotal_activation_bytes"] if opened else row["activation_bytes"]),
        }
        for header, value in values.items():
            if whole(header, main_header) and value not in ("0", "0 B"):
                figures.append((f"{row['path']} {header}", f"({value})" if opened else value))
    for stage in data["stages"]:
        values = {"params": f"{stage['params']:,}", "MACs": human(stage["macs"]),
                  "act. mem": nbytes(stage["activation_bytes"])}
        for header, value in values.items():
            if whole(header, stage_header) and value != "0":
                figures.append((f"stage {stage['resolution']} {header}", value))
    for aux in data["aux_outputs"]:
        figures.append((f"aux {aux['name']} params", f"{aux['params']:,}"))
    return figures


@pytest.mark.parametrize("spec", stock_specs(), ids=lambda p: p.stem)
def test_every_stock_summary_fits_every_width_and_never_cuts_a_number(spec: Path) -> None:
    c = analyse(spec)
    r = build_report(c.graph, c.analysis, c.warnings)
    data = r.model_dump(mode="json")
    for width in (*WIDTHS, None):
        text = format_report(r, width)
        lines = text.splitlines()
        if width is not None:
            assert all(len(line) <= width for line in lines), (width, max(lines, key=len))
        assert "…" not in text and "..." not in text
        # The parameters and the stages' MACs are never left out; the rest only as the note says.
        main_header = next(line for line in lines if line.startswith("module "))
        assert whole("params", main_header)
        if width is None or width >= 80:
            # Paths break before the MACs go: at 80 columns every stock summary keeps them.
            assert whole("MACs", main_header), width
        assert whole("MACs", next(line for line in lines if line.startswith("stage ")))
        for what, figure in shown_figures(data, text):
            assert whole(figure, text), (width, what, figure)
        if width is not None:
            # On a terminal rich prints the same text, styled.
            assert rich_text(r, width) == text + "\n"
    # At 160 columns every table is whole, as with no width at all.
    assert "left out" not in format_report(r, 160)


@pytest.mark.parametrize("spec", stock_specs(), ids=lambda p: p.stem)
def test_opened_groups_subtotal_their_rows_at_every_depth(spec: Path) -> None:
    c = analyse(spec)
    for depth in (1, 2, None):
        table = build_report(c.graph, c.analysis, depth=depth).table
        for k, row in enumerate(table):
            if row.kind != "open":
                continue
            inside = []
            for below in table[k + 1 :]:
                if below.level <= row.level:
                    break
                inside.append(below)
            assert inside, row.path
            assert row.subtotal_params == sum(x.params for x in inside), (depth, row.path)
            assert row.subtotal_macs == sum(x.macs for x in inside), (depth, row.path)
            assert row.subtotal_activation_bytes == sum(x.activation_bytes for x in inside), (depth, row.path)


def test_piped_summary_fits_columns_or_80(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["check", str(SPECS / "resnet152.cnn")]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80
    assert out == format_report(report_for("resnet152.cnn"), 80) + "\n"
    convention = [line for line in out.splitlines() if line.startswith(("convention:", " " * 15))]
    assert len(convention) >= 4  # the convention wraps under its value column
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["check", str(SPECS / "resnet152.cnn")]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 60
    assert "(left out to fit 60 columns: MACs, RF, act. mem;" in out and "39,101,440" in out


def test_json_numbers_are_whole_in_the_summary_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The report as `cnnspec check --json` prints it, against the text `cnnspec check` prints.
    monkeypatch.delenv("COLUMNS", raising=False)
    spec = str(SPECS / "googlenet2014.cnn")
    assert main(["check", spec, "--set", "aux_logits=true", "--json", "--depth", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["check", spec, "--set", "aux_logits=true", "--depth", "1"]) == 0
    text = capsys.readouterr().out
    figures = shown_figures(data, text)
    assert len(figures) > 40
    for what, figure in figures:
        assert whole(figure, text), (what, figure)


def test_fit_narrows_text_before_leaving_columns_out_and_never_a_number() -> None:
    from cnnspec.views.summary import COLUMNS, fit

    rows = [("module", "op", "output", "params", "MACs", "RF", "act. mem"),
            ("layer3", "Stage: Bottleneck ×36", "1024×14×14", "(40,613,888)", "(8.02G)", "1291", "(85.03 MiB)")]
    natural = [len(c) for c in rows[1]]
    full = sum(natural) + 2 * 6
    assert fit(COLUMNS, rows, full) == (list(range(7)), natural)
    # One column narrower: the op wraps onto two lines ("Stage:" / "Bottleneck ×36") before anything goes.
    kept, widths = fit(COLUMNS, rows, full - 1)  # type: ignore[misc]
    assert kept == list(range(7)) and widths[1] == len("Bottleneck ×36")
    assert widths[2:] == natural[2:]
    # Narrower than that wrap allows: act. mem goes, and the op has its whole width back.
    kept, widths = fit(COLUMNS, rows, full - 12)  # type: ignore[misc]
    assert kept == [0, 1, 2, 3, 4, 5] and widths == natural[:6]
    kept, widths = fit(COLUMNS, rows, 44)  # type: ignore[misc]
    assert [COLUMNS[i].header for i in kept] == ["module", "op", "output", "params"]
    assert widths == [6, len("Bottleneck"), 10, len("(40,613,888)")]
    # Narrower still, the op's words break (at 8 characters), and the numbers still do not.
    kept, widths = fit(COLUMNS, rows, 42)  # type: ignore[misc]
    assert widths == [6, 8, 10, 12]
    assert fit(COLUMNS, rows, 20) is None  # module, op and params cannot be left out


def test_rich_falls_back_to_the_plain_table_when_nothing_fits() -> None:
    out = rich_text(report_for("resnet152.cnn"), 30)
    assert "39,101,440" in out and "…" not in out


def test_rich_marks_subtotals_dim_on_a_terminal() -> None:
    import re

    out = rich_text(report_for("resnet152.cnn"), 120, terminal=True)
    dim = r"\x1b\[(?:[0-9]+;)*2(?:;[0-9]+)*m"
    assert re.search(dim + re.escape("(40,613,888)"), out)
    assert not re.search(dim + re.escape("39,101,440"), out)  # a fold's own figure
    assert not re.search(dim + re.escape("(flatten)"), out)  # a name in parentheses is no subtotal


def test_the_prose_wraps_at_80_columns_with_the_values_column_kept() -> None:
    for case in ("resnet152", "googlenet2014-aux", "densenet121"):
        spec, params, view = CASES[case]
        text = format_report(report_for(spec, params, **view))
        lines = text.splitlines()
        table_end = lines.index("")  # the tables keep their width: only the prose is checked
        stages = lines.index("stages (runs of layers at one resolution):")
        aux = [i for i, line in enumerate(lines) if line.startswith("aux output ")]
        prose = lines[: next(i for i, line in enumerate(lines) if line.startswith("module "))]
        prose += lines[table_end : (aux[0] if aux else stages)]
        assert prose and all(len(line) <= 80 for line in prose), max(prose, key=len)
        totals = lines[table_end + 1 : lines.index("", table_end + 1)]
        for line in totals:
            # Every line is a "label:   value" or a continuation under the value column.
            assert line[:15].strip() == "" or line[:15].rstrip().endswith(":"), line
            assert line[15] != " ", line
        assert sum(line.startswith(" " * 15) for line in totals) >= 4  # the convention wraps


# ------------------------------------------------------------------ subtotals and names


def test_opened_groups_show_their_subtotals() -> None:
    r = report_for("resnet152.cnn", depth=1)
    rows = {row.path: row for row in r.table}
    stage = rows["layer3"]
    assert stage.kind == "open" and (stage.params, stage.macs, stage.activation_bytes) == (0, 0, 0)
    inside = [row for row in r.table if row.path.startswith("layer3.")]
    assert stage.subtotal_params == sum(row.params for row in inside) == 40_613_888
    assert stage.subtotal_macs == sum(row.macs for row in inside)
    assert stage.subtotal_activation_bytes == sum(row.activation_bytes for row in inside)
    for row in r.table:
        if row.kind != "open":
            assert (row.subtotal_params, row.subtotal_macs) == (row.params, row.macs)
    line = next(line for line in format_report(r).splitlines() if line.startswith("layer3 "))
    assert "(40,613,888)" in line and "(8.02G)" in line and "1024×14×14" in line
    # Every group the JSON report lists has the same totals as its row in the table.
    groups = {g.path: g for g in r.groups}
    for row in r.table:
        if row.kind == "open":
            g = groups[row.path]
            assert (g.params, g.macs, g.activation_bytes) == (
                row.subtotal_params, row.subtotal_macs, row.subtotal_activation_bytes)


def test_unnamed_layers_show_their_op_in_their_scope() -> None:
    r = report_for("resnet152.cnn", depth=None, expand=True)
    rows = {row.path: row for row in r.table}
    # The path stays the module path (the JSON report, hooks); the label is what the table shows.
    assert (rows["2"].label, rows["layer4.2.8"].label, rows["9"].label) == ("(relu)", "layer4.2 (relu 3)", "(flatten)")
    # Two unnamed layers of one kind in one scope are numbered in order, so no two rows read the same.
    assert (rows["layer4.2.2"].label, rows["layer4.2.5"].label) == ("layer4.2 (relu 1)", "layer4.2 (relu 2)")
    labels = [row.label for row in r.table]
    assert len(labels) == len(set(labels))
    # A layer with parameters keeps its path, numbered or not, and so does a member of a sequence.
    assert rows["layer1.0.downsample.0"].label == "layer1.0.downsample.0"
    assert rows["conv1"].label == "conv1"
    stages = report_for("resnet152.cnn").stages
    assert (stages[0].first_label, stages[0].last_label) == ("conv1", "(relu)")
    assert (stages[0].first, stages[0].last) == ("conv1", "2")
    assert stages[4].last_label == "layer4.2 (relu 3)"
    text = format_report(report_for("resnet152.cnn"))
    assert "layer4.2.8" not in text and "\n2 " not in text
    vgg = {row.path: row.label for row in report_for("vgg16.cnn", depth=None).table}
    assert vgg["features.1"] == "features.1"  # features is a sequence: torch indexes it so


def test_json_table_rows_carry_labels_and_subtotals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SPECS / "resnet152.cnn"), "--json", "--depth", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = next(t for t in data["table"] if t["path"] == "layer3")
    assert (row["kind"], row["params"], row["subtotal_params"]) == ("open", 0, 40_613_888)
    relu = next(t for t in data["table"] if t["path"] == "2")
    assert relu["label"] == "(relu)"
    assert data["stages"][0]["last"] == "2" and data["stages"][0]["last_label"] == "(relu)"
    assert sum(t["params"] for t in data["table"]) == data["total_params"]


@pytest.mark.parametrize(
    ("spec", "stages"),
    [
        # Swin keeps its maps channels-last and merges patches by slicing: four stages all the same.
        ("swin_t.cnn", ["56×56", "28×28", "14×14", "7×7", "1×1", "flat"]),
        # ConvNeXt permutes to channels-last and back inside every block.
        ("convnext_tiny.cnn", ["56×56", "28×28", "14×14", "7×7", "1×1", "flat"]),
        # ViT's patches become tokens; the class token makes 197 of them.
        ("vit_b_16.cnn", ["14×14", "196 tokens", "197 tokens", "flat"]),
    ],
)
def test_stages_follow_the_channels_wherever_a_layer_moves_them(spec: str, stages: list[str]) -> None:
    r = report_for(spec)
    assert [s.resolution for s in r.stages] == stages
    assert sum(s.macs for s in r.stages) == r.macs and sum(s.params for s in r.stages) == r.total_params


def test_swin_folds_blocks_that_alternate_their_window_shift() -> None:
    r = report_for("swin_t.cnn", depth=None)
    # Every other block shifts its windows and each drops its path a little more often: the
    # blocks of a stage fold as one, marked with both; nothing else differs.
    assert {f.path: (f.count, f.varies) for f in r.folds} == {
        f"features.{s}.0-{n - 1}": (n, ["rates", "shifts"]) for s, n in ((1, 2), (3, 2), (5, 6), (7, 2))
    }
    fold = next(f for f in r.folds if f.path == "features.5.0-5")
    inside = [x for x in r.layers if x.path.startswith("features.5.")]
    assert (fold.params, fold.macs) == (sum(x.params for x in inside), sum(x.macs for x in inside))
    assert "shifts (window attention) folded (×N, shifts vary)" in " ".join(format_report(r).split())


def test_a_fold_never_hides_a_shift_in_blocks_that_differ_otherwise() -> None:
    text = """block B(s, k) { window_attention(2, 4, shift = s); conv(8, k, padding = k // 2) }
network N { input: 8 x 8 x 8
  permute([0, 2, 3, 1]); a: B(0, 1); b: B(2, 1); permute([0, 3, 1, 2]); c: B(0, 3); d: B(2, 1) }"""
    c = analyse(text)
    r = build_report(c.graph, c.analysis, depth=None)
    assert [(f.path, f.varies) for f in r.folds] == [("a-b", ["shifts"])]
