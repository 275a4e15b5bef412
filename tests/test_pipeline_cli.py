"""`cnnspec check --pipeline N` and `cnnspec diagram --pipeline N`: the plan as text and JSON (golden),
stock outputs unchanged without the option, usage errors, and the stages drawn by real Graphviz."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from support import FIXTURES, ROOT, SPECS, UPDATE_GOLDEN

from cnnspec import cli
from cnnspec.analysis.pipeline import plan_pipeline
from cnnspec.api import analyse
from cnnspec.backends.diagram import STAGE_COLOURS, to_dot
from cnnspec.views.format import nbytes, shape_text

GOLDEN = FIXTURES / "pipeline"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def _golden(name: str, got: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    assert path.exists(), f"no {path.name}: run with CNNSPEC_UPDATE_GOLDEN=1 and review it"
    assert got == path.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")


def test_check_prints_the_plan_after_the_unchanged_summary(capsys: pytest.CaptureFixture[str]) -> None:
    rc, plain, _ = _run(capsys, "check", "specs/resnet18.cnn", "--batch", "8")
    assert rc == 0
    rc, out, err = _run(capsys, "check", "specs/resnet18.cnn", "--batch", "8", "--pipeline", "3")
    assert rc == 0, err
    assert out.startswith(plain.rstrip("\n") + "\n\npipeline plan: 3 stages")
    _golden("resnet18_pipeline3.txt", out[len(plain) :])


def test_check_prints_pinned_boundaries_and_every_balance(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the marker's file is a long temporary path
    # VGG-16 with a marker after its features, in a copy of the family file it imports.
    text = (SPECS / "vgg.cnn").read_text(encoding="utf-8")
    assert "    avgpool:" in text
    (tmp_path / "vgg.cnn").write_text(text.replace("    avgpool:", "    cut\n    avgpool:", 1), encoding="utf-8")
    spec = tmp_path / "marked.cnn"
    spec.write_text((SPECS / "vgg16.cnn").read_text(encoding="utf-8"), encoding="utf-8")
    rc, out, err = _run(capsys, "check", str(spec), "--pipeline", "4", "--balance", "params", "-q")
    assert (rc, out) == (0, ""), err  # -q prints no summary; the plan is still made (and would fail)
    rc, out, err = _run(capsys, "check", str(spec), "--pipeline", "4", "--balance", "params")
    assert rc == 0, err
    plan = out[out.index("\npipeline plan:") :]
    assert "balanced on parameters (--balance params)" in plan
    assert re.search(r"parameters \d\.\d\d \(balanced on\)", plan) and "MACs " in plan and "activation memory " in plan
    line = next(x for x in plan.splitlines() if "cut at" in x)
    assert line.split()[:3] == ["0", "→", "1"] and "features.30" in line and "512×7×7" in line
    assert f"cut at {tmp_path / 'vgg.cnn'}:" in line


def test_check_json_has_the_plan_and_otherwise_the_stock_report(capsys: pytest.CaptureFixture[str]) -> None:
    rc, plain, _ = _run(capsys, "check", "specs/resnet18.cnn", "--json", "--batch", "8")
    rc, out, err = _run(
        capsys, "check", "specs/resnet18.cnn", "--json", "--batch", "8", "--pipeline", "3", "--balance", "memory"
    )
    assert rc == 0, err
    data = json.loads(out)
    plan = data.pop("pipeline")
    assert data == json.loads(plain)
    _golden("resnet18_pipeline3_memory.json", json.dumps(plan, indent=2) + "\n")
    assert plan["balance"] == "memory" and plan["batch"] == 8 and len(plan["stages"]) == 3
    for stage, cut in zip(plan["stages"], plan["cuts"], strict=False):
        assert cut["after"] == stage["last"] and cut["shape"] == stage["boundary_shape"]
    assert plan["stages"][-1]["boundary_shape"] is None
    modules = [m for s in plan["stages"] for m in s["modules"]]
    g = analyse(SPECS / "resnet18.cnn").graph
    assert modules == [n.path for n in g.nodes if n.has_module]


def test_the_command_line_offers_every_measure() -> None:
    from cnnspec.analysis.pipeline import MEASURES
    from cnnspec.commands.check import BALANCES

    assert BALANCES == MEASURES


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pipeline", "0"], "--pipeline expects a number of stages of at least 1, got 0"),
        (["--pipeline", "-2"], "--pipeline expects a number of stages of at least 1, got -2"),
        (["--balance", "params"], "--balance applies to a pipeline plan: give --pipeline N too"),
        (["--pipeline", "2", "--balance", "flops"], "argument --balance: invalid choice: 'flops'"),
        (["--pipeline", "two"], "argument --pipeline: invalid int value: 'two'"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as e:  # argparse's own errors exit through SystemExit
        rc = cli.main(["check", "specs/lenet5.cnn", *argv])
        raise SystemExit(rc)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_too_many_stages_says_how_many_are_possible(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "check", "specs/googlenet.cnn", "--pipeline", "30")
    assert (rc, out) == (1, "")
    assert (
        "error[E701]: `GoogLeNet` cannot be cut into 30 pipeline stages: it has 25 legal cut points, so at most "
        "26 stages" in err
    )
    rc, out, err = _run(capsys, "check", "specs/googlenet.cnn", "--pipeline", "30", "--json")
    assert rc == 1 and json.loads(out)[0]["code"] == "E701"


def test_markers_without_a_plan_change_no_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After LeNet-5's first relu, an unnamed layer at position 1: the relus after it keep theirs.
    text = (SPECS / "lenet5.cnn").read_text(encoding="utf-8")
    plain, marked = tmp_path / "a.cnn", tmp_path / "b.cnn"
    plain.write_text(text, encoding="utf-8")
    assert "    relu\n    pool1:" in text
    marked.write_text(text.replace("    relu\n    pool1:", "    relu; cut\n    pool1:", 1), encoding="utf-8")
    for extra in ([], ["--json"]):
        _, a, _ = _run(capsys, "check", str(plain), *extra)
        rc, b, err = _run(capsys, "check", str(marked), *extra)
        assert rc == 0 and not err
        assert a.replace(str(plain), "X").replace("a.cnn", "X") == b.replace(str(marked), "X").replace("b.cnn", "X")
    monkeypatch.setenv("COLUMNS", "300")  # the marker's file is a long temporary path
    rc, out, _ = _run(capsys, "check", str(marked), "--pipeline", "2")
    assert rc == 0 and "pinned by" in out
    assert re.search(r"^0 → 1 +\(relu 1\) +6×28×28 .* cut at .*b\.cnn:5:11$", out, re.M), out


# ------------------------------------------------------------------ diagram


def test_diagram_colours_every_node_by_its_stage() -> None:
    c = analyse(SPECS / "resnet18.cnn")
    plan = plan_pipeline(c.graph, 3, "macs", analysis=c.analysis)
    d = to_dot(c.graph, c.analysis, plan=plan)
    assert d.stages == 3
    plain = to_dot(c.graph, c.analysis)
    assert plain.stages == 0 and "pipeline" not in plain.dot and "penwidth=2.5" not in plain.dot
    colour_of = dict(re.findall(r"^\s*(n\d+) \[.*?color=\"(#[0-9a-f]{6})\" .*?penwidth=2\.5", d.dot, re.M))
    assert len(colour_of) == d.nodes  # every drawn node has its stage's border
    # The legend has one row per stage, in its colour, with its totals.
    for s in plan.stages:
        assert f'bgcolor="{STAGE_COLOURS[s.index]}"' in d.dot
        assert f"stage {s.index}</b>: {s.first} … {s.last}" in d.dot
        assert f"{s.params:,} params" in d.dot
    # Each boundary is one bold edge in the colour of the stage it enters, saying what it carries.
    for k in (1, 2):
        edges = re.findall(rf'label="stage {k - 1} → {k}: ([^"]+)" color="{STAGE_COLOURS[k]}"', d.dot)
        sent = plan.stages[k - 1]
        assert sent.boundary is not None
        assert edges == [f"{shape_text(sent.boundary)}, {nbytes(sent.boundary_bytes)}/sample"]


def test_diagram_breaks_a_fold_at_a_boundary() -> None:
    c = analyse(SPECS / "resnet152.cnn")
    plan = plan_pipeline(c.graph, 4, "macs", analysis=c.analysis)
    folded = to_dot(c.graph, c.analysis)
    split = to_dot(c.graph, c.analysis, plan=plan)
    assert "Bottleneck ×35" in folded.dot and "Bottleneck ×35" not in split.dot
    stage = {i: s.index for s in plan.stages for i in s.nodes}
    # Every fold drawn lies in one stage: its title's run of instances never crosses a cut.
    for first, last in re.findall(r"(layer\d)\.(\d+-\d+) \(each like", split.dot):
        a, z = map(int, last.split("-"))
        ids = [n.id for n in c.graph.nodes if n.scope.split(".")[:2] in ([first, str(i)] for i in range(a, z + 1))]
        assert len({stage[i] for i in ids}) == 1, (first, a, z)


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_diagram_command_renders_the_stages(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "plan.svg"
    rc, printed, err = _run(capsys, "diagram", "specs/googlenet.cnn", "--pipeline", "4", "-o", str(out))
    assert rc == 0, err
    assert printed.strip().endswith("4 pipeline stages")
    svg = out.read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and "pipeline: 4 stages, balanced on MACs" in svg
    for k in range(4):
        assert STAGE_COLOURS[k] in svg
    for k in (1, 2, 3):
        assert f"stage {k - 1} → {k}:" in svg
    rc, _, err = _run(capsys, "diagram", "specs/googlenet.cnn", "--pipeline", "40", "-o", str(tmp_path / "x.svg"))
    assert rc == 1 and "E701" in err and not (tmp_path / "x.svg").exists()
    rc, _, err = _run(capsys, "diagram", "specs/googlenet.cnn", "--balance", "memory", "-o", str(tmp_path / "y.svg"))
    assert rc == 2 and "give --pipeline N too" in err


# ------------------------------------------------------------------ docs

PAGE = ROOT / "docs" / "parallelism.md"


def _console_blocks(text: str) -> list[tuple[str, str]]:
    """(command, what the page shows after it) for each ```console block of the page that shows a plan
    (`cnnspec check`; the training commands' blocks are run by tests/test_docs.py's marks)."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        first, _, shown = block.partition("\n")
        if first.startswith("$ cnnspec check "):
            found.append((first[2:].split("#")[0].strip(), shown))
    return found


def test_the_plans_the_page_shows_are_what_check_prints(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _console_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) == 2
    for command, shown in blocks:
        rc, out, err = _run(capsys, *command.split()[1:])
        assert rc == 0, err
        assert out[out.index("\npipeline plan:") :] == shown, command


def _figure_tables() -> tuple[str, str]:
    """The page's two tables of plans, as the planner gives them now."""
    plans = [
        "| network | N | balance | cuts after | MACs | params | memory |",
        "|---|---|---|---|---|---|---|",
    ]
    stages = [
        "| network | N | stage | layers | params | MACs | act. mem (batch 32) | sends / sample |",
        "|---|---|---|---|---|---|---|---|",
    ]
    from cnnspec.analysis.pipeline import MEASURES
    from cnnspec.views.format import human
    from cnnspec.views.rows import ReportData

    for spec, name in (("resnet152", "ResNet-152"), ("vgg16", "VGG-16"), ("googlenet", "GoogLeNet")):
        c = analyse(SPECS / f"{spec}.cnn")
        labels = ReportData(c.graph, c.analysis, c.warnings, batch=32).labels
        for n in (2, 4):
            for measure in MEASURES:
                plan = plan_pipeline(c.graph, n, measure, batch=32, analysis=c.analysis)
                cuts = ", ".join(f"`{labels.get(c.graph.nodes[p].path, c.graph.nodes[p].path)}`" for p in plan.cuts)
                cells = [
                    f"**{plan.imbalance[m]:.2f}**" if m == measure else f"{plan.imbalance[m]:.2f}" for m in MEASURES
                ]
                plans.append(f"| {name} | {n} | {measure} | {cuts} | {' | '.join(cells)} |")
                if measure != "macs":
                    continue
                for s in plan.stages:
                    sends = "-" if s.boundary is None else f"{shape_text(s.boundary)} ({nbytes(s.boundary_bytes)})"
                    stages.append(
                        f"| {name} | {n} | {s.index} | {s.layers} | {s.params / 1e6:.2f}M | {human(s.macs)} | "
                        f"{nbytes(s.memory)} | {sends} |"
                    )
    return "\n".join(plans) + "\n", "\n".join(stages) + "\n"


def test_the_figures_the_page_shows_are_the_planners() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for table in _figure_tables():
        assert table in text
