"""Diagnostics: golden output of every invalid and warning fixture, the code registry, the CLI.

Each `tests/fixtures/invalid/*.cnn` and `tests/fixtures/warnings/*.cnn` runs
through the real command line (in process) and its output must equal the
`.expected` file next to it. Comment lines at the top of a fixture set up
the run:

    # args: --set width=3         extra command-line arguments
    # command: compile            the subcommand (default: check)
    # env: NAME=VALUE             an environment variable
    # patch: module.NAME=INT      a module constant (a limit), e.g. cnnspec.api.MAX_PARAMS=1000
    # limits: max_nodes=50        elaboration limits (cnnspec.semantics.elaborate.Limits)

CNNSPEC_UPDATE_GOLDEN=1 rewrites the .expected files; review them before committing.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from support import FIXTURES, ROOT, UPDATE_GOLDEN, run_cli

import cnnspec
from cnnspec import cli
from cnnspec.diagnostics.codes import CODES, markdown
from cnnspec.semantics.elaborate import Limits

INVALID = FIXTURES / "invalid"
WARNINGS = FIXTURES / "warnings"
CASES = sorted(INVALID.glob("*.cnn")) + sorted(WARNINGS.glob("*.cnn"))


def _headers(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"# (args|command|env|patch|limits): (.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).strip())
    return out


def run_fixture(path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str = "text"):
    """Run a fixture through cli.main in the repository root; (exit status, stdout, stderr)."""
    monkeypatch.chdir(ROOT)
    heads = _headers(path.read_text(encoding="utf-8"))
    for item in heads.get("env", []):
        name, _, value = item.partition("=")
        monkeypatch.setenv(name, value)
    for item in heads.get("patch", []):
        target, _, value = item.partition("=")
        module, _, attr = target.rpartition(".")
        monkeypatch.setattr(importlib.import_module(module), attr, int(value))
    for item in heads.get("limits", []):
        kw = {k: int(v) for k, v in (p.split("=") for p in item.split())}
        monkeypatch.setattr("cnnspec.semantics.elaborate.DEFAULT_LIMITS", Limits(**kw))
    command = heads.get("command", ["check"])[0]
    args = [a for item in heads.get("args", []) for a in item.split()]
    rel = str(path.relative_to(ROOT))
    rc = cli.main([command, rel, *args, "--diagnostics", fmt])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden(path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_fixture(path, monkeypatch, capsys)
    assert "Traceback" not in out + err
    if path.parent == INVALID:
        assert rc == 1, err
        text = err
    else:
        assert rc == 0, err
        text = err  # warnings go to stderr; the summary table stays on stdout
    got = f"{text.rstrip()}\nexit: {rc}\n"
    golden = path.with_suffix(".expected")
    if UPDATE_GOLDEN:
        golden.write_text(got, encoding="utf-8")
        return
    assert golden.exists(), f"no {golden.name}: run with CNNSPEC_UPDATE_GOLDEN=1 and review it"
    assert got == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_json_diagnostics_have_valid_spans(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run_fixture(path, monkeypatch, capsys, fmt="json")
    items = json.loads(out if rc == 1 else err or "[]")
    assert isinstance(items, list)
    if path.parent == INVALID:
        assert any(d["severity"] == "error" for d in items)
    keys = {"file", "line", "col", "end_line", "end_col", "severity", "code", "message", "notes", "help"}
    for d in items:
        assert set(d) == keys
        assert d["code"] in CODES
        if d["line"] is not None:
            assert_span_valid(d)
        for n in d["notes"]:
            if "line" in n:
                assert_span_valid(n)


def assert_span_valid(d: dict) -> None:
    """A span lies inside its file: 1-based, end after start, columns within the line (+1 for the end)."""
    lines = (ROOT / d["file"]).read_text(encoding="utf-8").split("\n") if (ROOT / d["file"]).is_file() else None
    assert d["line"] >= 1 and d["col"] >= 1
    assert (d["end_line"], d["end_col"]) >= (d["line"], d["col"])
    if lines is not None:
        assert d["line"] <= len(lines)
        assert d["col"] <= len(lines[d["line"] - 1]) + 1


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "cnnspec").rglob("*.py"):
        if path.name == "codes.py" or "train" in path.parts:
            continue
        found |= set(re.findall(r'\b([EW]\d{3})\b', path.read_text(encoding="utf-8")))
    return found


def test_every_code_used_is_registered_documented_and_covered_by_a_fixture() -> None:
    used = _codes_in_source()
    assert used <= set(CODES), sorted(used - set(CODES))
    docs = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    goldens = [*INVALID.glob("*.expected"), *WARNINGS.glob("*.expected")]
    expected = "".join(p.read_text(encoding="utf-8") for p in goldens)
    for code in CODES:
        assert f"## {code}" in docs, code
        assert f"[{code}]" in expected, f"no fixture produces {code}"
    # Every registered code is used somewhere (no stale entries).
    assert set(CODES) <= used, sorted(set(CODES) - used)


def test_docs_errors_md_is_generated_from_the_registry() -> None:
    assert (ROOT / "docs" / "errors.md").read_text(encoding="utf-8") == markdown(), (
        "run `python -m cnnspec.diagnostics.codes > docs/errors.md`"
    )


NEEDS_FILES_OR_TIME = ("E401", "E402", "E602", "E608")


@pytest.mark.parametrize(
    "code", [c for c, v in CODES.items() if v.wrong and v.fixed and not v.args and c not in NEEDS_FILES_OR_TIME]
)
def test_registry_examples_are_right(code: str) -> None:
    entry = CODES[code]
    try:
        checked = cnnspec.api.analyse(entry.wrong)
        got = {d.code for d in checked.warnings}
    except cnnspec.SpecError as e:
        got = {d.code for d in e.diagnostics}
    assert code in got, (code, got)
    try:
        checked = cnnspec.api.analyse(entry.fixed)
    except cnnspec.SpecError as e:
        pytest.fail(f"the fixed example of {code} fails:\n{e}")
    assert code not in {d.code for d in checked.warnings}


def test_independent_errors_are_all_reported_once(monkeypatch, capsys) -> None:
    rc, _, err = run_fixture(INVALID / "independent_errors.cnn", monkeypatch, capsys)
    codes = re.findall(r"error\[(E\d+)\]", err)
    assert rc == 1 and sorted(codes) == ["E101", "E209", "E212", "E212"], err


def test_one_mistake_in_a_repeated_block_is_one_error(monkeypatch, capsys) -> None:
    _, _, err = run_fixture(INVALID / "E301_trace_chain.cnn", monkeypatch, capsys)
    assert err.count("error[") == 1
    assert "note: in Unit, instantiated as layer3.0 at tests/fixtures/invalid/E301_trace_chain.cnn" in err


def test_many_errors_end_with_and_n_more(monkeypatch, capsys) -> None:
    _, _, err = run_fixture(INVALID / "many_errors.cnn", monkeypatch, capsys)
    assert "... and 5 more" in err and "aborting: 25 errors" in err


def test_the_real_command_never_prints_a_traceback_for_spec_errors() -> None:
    # run_cli asserts that no traceback is printed.
    r = run_cli("check", INVALID / "independent_errors.cnn")
    assert r.rc == 1 and "error[E209]" in r.err
    r = run_cli("check", INVALID / "E606_parens_too_deep.cnn")
    assert r.rc == 1 and "error[E606]" in r.err
    r = run_cli("check", "/dev/null/nothing.cnn")
    assert r.rc == 1 and "error[E401]" in r.err


def test_an_internal_error_is_one_line_and_exit_3(monkeypatch, capsys) -> None:
    import cnnspec.commands.check as check

    def boom(args):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(check, "run", boom)
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("CNNSPEC_DEBUG", raising=False)
    rc = cli.main(["check", "specs/lenet5.cnn"])
    _, err = capsys.readouterr()
    assert rc == 3
    assert "internal error (RuntimeError: simulated bug)" in err and "please report" in err
    assert "Traceback" not in err
    monkeypatch.setenv("CNNSPEC_DEBUG", "1")
    assert cli.main(["check", "specs/lenet5.cnn"]) == 3
    assert "Traceback" in capsys.readouterr().err
