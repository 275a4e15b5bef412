"""`cnnspec fmt` and cnnspec.syntax.printer: the layout keeps the AST, is idempotent, keeps
comments, refuses what does not parse, and never loses or half-writes a file."""

from __future__ import annotations

import dataclasses
import os
import random
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fuzz.mutate import mutate, random_spec
from support import FIXTURES, ROOT, SPECS

from cnnspec.diagnostics import SpecError
from cnnspec.syntax.parser import parse
from cnnspec.syntax.printer import format_source

_STOCK = sorted(SPECS.glob("*.cnn"))


def _strip(node: Any) -> Any:
    """node with every span (and the file name) left out: what formatting must not change."""
    if isinstance(node, list):
        return [_strip(x) for x in node]
    if dataclasses.is_dataclass(node):
        fields = {
            f.name: _strip(getattr(node, f.name))
            for f in dataclasses.fields(node)
            if f.name != "file" and f.name != "span" and not f.name.endswith("_span")
        }
        return (type(node).__name__, fields)
    return node


def _check_properties(text: str, name: str = "x.cnn") -> str:
    """Format text; assert the AST is unchanged, formatting is idempotent and comments survive."""
    out = format_source(text, name)
    assert _strip(parse(out, name)) == _strip(parse(text, name)), out
    assert format_source(out, name) == out
    comments = [line[line.index("#") :].rstrip() for line in text.splitlines() if "#" in line and '"' not in line]
    for c in comments:
        assert c in out, (c, out)
    return out


def _parses(text: str) -> bool:
    try:
        parse(text, "x.cnn")
    except SpecError:
        return False
    return True


@pytest.mark.parametrize("path", _STOCK, ids=lambda p: p.name)
def test_stock_specs_keep_their_ast_and_are_formatted(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert _check_properties(text, path.name) == text  # the stock specs are kept formatted


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(FIXTURES.rglob("*.cnn")) if _parses(p.read_text(encoding="utf-8", errors="replace"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_fixtures_keep_their_ast(path: Path) -> None:
    _check_properties(path.read_text(encoding="utf-8"), path.name)


@pytest.mark.parametrize("seed", range(300))
def test_generated_specs_keep_their_ast(seed: int) -> None:
    rng = random.Random(seed)
    text = random_spec(rng)
    if seed % 2:
        stock = _STOCK[seed % len(_STOCK)].read_text(encoding="utf-8")
        text = mutate(stock, rng)
    if _parses(text):
        _check_properties(text)


def test_layout_rules() -> None:
    messy = (
        "# head\n\n\nblock  B( c,k=3 ) {\n  conv1 : conv( c , k ,stride=2)   # keep\n"
        "  bn1:batchnorm\n\n\n  relu ;dropout(0.5)\n  x:{conv(c,1);batchnorm}\n}\n"
        "network N(layers=[1,2]) {\ninput: 3 x 8 x 8\n  init conv: weight = zeros\n"
        '  init linear "fc": weight=normal(std=0.1)\n B(4) * (2 + 1)\n'
        "  let y = (1 + 2) * -(3 - 4) ** 2 if not (a or b) and c else (d if e else f)\n"
        "}\n"
    )
    out = _check_properties(messy)
    assert out == (
        "# head\n\n"
        "block B(c, k = 3) {\n"
        "    conv1: conv(c, k, stride = 2)  # keep\n"
        "    bn1:   batchnorm\n\n"
        "    relu; dropout(0.5)\n"
        "    x:     { conv(c, 1); batchnorm }\n"
        "}\n\n"
        "network N(layers = [1, 2]) {\n"
        "    input: 3 x 8 x 8\n"
        "    init conv:        weight = zeros\n"
        '    init linear "fc": weight = normal(std = 0.1)\n'
        "    B(4) * (2 + 1)\n"
        "    let y = (1 + 2) * -(3 - 4) ** 2 if not (a or b) and c else d if e else f\n"
        "}\n"
    )


def test_long_arguments_wrap_under_the_bracket() -> None:
    args = ", ".join(f"arg{i} = {i}" for i in range(30))
    out = _check_properties(f"network N({args}) {{\n    input: 3 x 8 x 8\n    relu\n}}\n")
    lines = out.splitlines()
    assert all(len(line) <= 120 for line in lines)
    assert lines[1].startswith(" " * len("network N(") + "arg")


def test_comment_inside_brackets_moves_above_its_statement() -> None:
    text = "network N {\n    input: 3 x 8 x 8\n    conv(8,   # channels\n         3)\n}\n"
    out = _check_properties(text)
    assert "    # channels\n    conv(8, 3)\n" in out


def test_text_that_does_not_parse_is_refused() -> None:
    with pytest.raises(SpecError) as e:
        format_source("network N {\n    conv(8,\n", "bad.cnn")
    assert e.value.diagnostics[0].code.startswith("E00")


# ------------------------------------------------------------------- command


def _fmt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "cnnspec", "fmt", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


def test_stock_specs_pass_fmt_check() -> None:
    r = _fmt("--check", *map(str, _STOCK))
    assert r.returncode == 0, r.stdout + r.stderr


def test_fmt_rewrites_in_place_keeping_the_mode(tmp_path: Path) -> None:
    f = tmp_path / "a.cnn"
    f.write_text("network N {\ninput: 3 x 8 x 8\nconv(8,3)\n}\n")
    f.chmod(0o640)
    r = _fmt("--check", str(f))
    assert r.returncode == 1 and str(f) in r.stdout
    assert f.read_text() == "network N {\ninput: 3 x 8 x 8\nconv(8,3)\n}\n"
    r = _fmt("--diff", str(f))
    assert r.returncode == 0 and "+    conv(8, 3)" in r.stdout and "-conv(8,3)" in r.stdout
    assert f.read_text().endswith("conv(8,3)\n}\n")
    r = _fmt(str(f))
    assert r.returncode == 0, r.stderr
    assert f.read_text() == "network N {\n    input: 3 x 8 x 8\n    conv(8, 3)\n}\n"
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.cnn"]  # no temp file left
    assert _fmt("--check", str(f)).returncode == 0


def test_bad_files_are_named_left_untouched_and_the_rest_formatted(tmp_path: Path) -> None:
    good = tmp_path / "good.cnn"
    good.write_text("network N {\ninput: 3 x 8 x 8\nrelu\n}\n")
    syntax = tmp_path / "syntax.cnn"
    syntax.write_text("network N {\n    conv(8,\n")
    binary = tmp_path / "latin1.cnn"
    binary.write_bytes(b"# caf\xe9\nnetwork N {\n}\n")
    folder = tmp_path / "dir.cnn"
    folder.mkdir()
    missing = tmp_path / "missing.cnn"
    before = {p: p.read_bytes() for p in (syntax, binary)}
    r = _fmt(str(syntax), str(binary), str(folder), str(missing), str(good))
    assert r.returncode == 1
    assert "syntax.cnn:3:1" in r.stderr or "syntax.cnn:2" in r.stderr, r.stderr
    for p in (binary, folder, missing):
        assert str(p) in r.stderr
    assert "Traceback" not in r.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert good.read_text() == "network N {\n    input: 3 x 8 x 8\n    relu\n}\n"


def test_read_only_file_and_directory(tmp_path: Path) -> None:
    text = "network N {\nrelu\n}\n"
    ro = tmp_path / "ro.cnn"
    ro.write_text(text)
    ro.chmod(0o444)
    locked = tmp_path / "locked"
    locked.mkdir()
    inner = locked / "in.cnn"
    inner.write_text(text)
    locked.chmod(0o555)
    try:
        r = _fmt(str(ro), str(inner))
        assert r.returncode == 1
        assert str(ro) in r.stderr and str(inner) in r.stderr and "Traceback" not in r.stderr
        assert ro.read_text() == text and inner.read_text() == text
    finally:
        locked.chmod(0o755)


def test_fmt_usage_error() -> None:
    r = _fmt()
    assert r.returncode == 2
