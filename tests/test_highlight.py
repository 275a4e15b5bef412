"""The .cnn lexer (Pygments) and the TextMate grammar: every stock spec lexes cleanly, both give every
character the same class, every class is used, and Pygments finds the lexer through its entry point."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from entry_points import declared, env_with_entry_points
from pygments.token import Error, Keyword, Name, Number, Operator, String, Whitespace
from support import SPECS

from cnnspec.highlight import KEYWORDS, TEXTMATE_SCOPES, TOKEN_CLASSES, CnnLexer, textmate_grammar
from cnnspec.layers.registry import all_kinds

STOCK = sorted(SPECS.glob("*.cnn"))
GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "cnnspec.tmLanguage.json"
INVALID = "invalid.illegal.cnnspec"


def _lex(text: str) -> list[tuple[object, str]]:
    # stripnl/ensurenl off: the tokens must give back the text exactly.
    return list(CnnLexer(stripnl=False, ensurenl=False).get_tokens(text))


def _chars_pygments(text: str) -> dict[tuple[int, int], str | None]:
    """(line, column) of each non-space character -> the TextMate scope of its Pygments token."""
    out: dict[tuple[int, int], str | None] = {}
    line = col = 0
    for token, value in _lex(text):
        for ch in value:
            if not ch.isspace():
                out[line, col] = TEXTMATE_SCOPES.get(token)
            line, col = (line + 1, 0) if ch == "\n" else (line, col + 1)
    return out


@pytest.fixture(scope="module")
def textmate():
    """The TextMate engine (a Python port of vscode-textmate on Oniguruma) loaded with the grammar file."""
    from textmate_grammar.parsers.base import LanguageParser

    return LanguageParser(json.loads(GRAMMAR.read_text(encoding="utf-8")))


def _chars_textmate(parser, text: str) -> dict[tuple[int, int], str | None]:
    out: dict[tuple[int, int], str | None] = {}
    for (line, col), value, scopes in parser.parse_string(text).flatten():
        for i, ch in enumerate(value):
            if not ch.isspace():
                out[line, col + i] = scopes[-1] if len(scopes) > 1 else None
    return out


def test_every_stock_spec_lexes_without_errors_and_gives_back_its_text() -> None:
    used: Counter = Counter()
    for spec in STOCK:
        text = spec.read_text(encoding="utf-8")
        tokens = _lex(text)
        assert "".join(v for _, v in tokens) == text, spec.name
        errors = [v for t, v in tokens if t in Error]
        assert not errors, f"{spec.name}: {errors[:5]}"
        used.update(t for t, _ in tokens)
    assert set(used) == set(TOKEN_CLASSES), (
        f"unused: {set(TOKEN_CLASSES) - set(used)}, undeclared: {set(used) - set(TOKEN_CLASSES)}"
    )


def test_the_classes_of_names_in_context() -> None:
    text = (
        'block Unit(c) { block: conv(c, 3); "x": relu }\n'
        "network net(n = 2) {\n"
        "    input: 3 x 32 x n   # x is a keyword only here\n"
        '    init conv "a.*": weight = kaiming_normal(mode = "fan_out")\n'
        "    let x = int(n * 1.5e-1) if not true else -1\n"
        "    Unit(x) * 2\n"
        "}\n"
        "network other = Net(layers = [1])\n"
    )
    significant = [(v, t) for t, v in _lex(text) if t not in Whitespace]
    first = dict(reversed(significant))  # each value's class where it first occurs
    assert significant[:2] == [("block", Keyword), ("Unit", Name.Class)]
    assert ("block", Name.Label) in significant  # a keyword as a label: `block: conv(...)`
    assert first['"x"'] is Name.Label and first["conv"] is Name.Builtin and first["relu"] is Name.Builtin
    assert first["net"] is Name.Class and first["Net"] is Name.Class  # defined lower-case; capitalised
    assert first["kaiming_normal"] is Name.Function and first["int"] is Name.Function
    assert first['"a.*"'] is String.Double and first["mode"] is Name and first["1.5e-1"] is Number.Float
    assert first["not"] is Operator.Word and first["true"] is Keyword.Constant
    # `x` is a keyword between input's sizes only: then a `let` name and an argument.
    assert [t for v, t in significant if v == "x"] == [Keyword, Keyword, Name, Name]


def test_every_layer_kind_keyword_and_function_has_its_class() -> None:
    for name in all_kinds():
        assert _lex(name) == [(Name.Builtin, name)], name
    for word in KEYWORDS:
        assert _lex(word)[0][1] == word and _lex(word)[0][0] not in (Name, Error), word


def test_text_that_is_not_cnn_gives_error_tokens_and_no_exception() -> None:
    tokens = _lex('conv(3) @ $ "open\n')
    assert {v for t, v in tokens if t in Error} >= {"@", "$"}
    assert "".join(v for _, v in tokens) == 'conv(3) @ $ "open\n'


def test_pyproject_registers_the_lexer_for_pygments(tmp_path: Path) -> None:
    points = declared("pygments.lexers")
    assert points == {"cnnspec": "cnnspec.highlight:CnnLexer"}
    script = (
        "from pygments.lexers import get_lexer_by_name as by_name, get_lexer_for_filename as by_file\n"
        "print(by_name('cnn').name, by_name('cnnspec').name, by_file('a/b.cnn').name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env_with_entry_points(tmp_path, "pygments.lexers"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cnnspec", "cnnspec", "cnnspec"]


def test_the_textmate_grammar_file_is_the_generated_one() -> None:
    on_disk = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    assert on_disk == textmate_grammar(), "regenerate: python -m cnnspec.highlight > grammar/cnnspec.tmLanguage.json"


def test_the_textmate_regexes_are_ones_python_reads_too() -> None:
    found = re.findall(r'"(?:match|begin|end)": "((?:[^"\\]|\\.)*)"', GRAMMAR.read_text(encoding="utf-8"))
    assert len(found) > 20
    for pattern in found:
        re.compile(json.loads(f'"{pattern}"'))


def test_the_textmate_grammar_agrees_with_the_lexer_on_every_stock_spec(textmate) -> None:
    used: Counter = Counter()
    for spec in STOCK:
        text = spec.read_text(encoding="utf-8")
        tm = _chars_textmate(textmate, text)
        used.update(tm.values())
        invalid = sorted(k for k, s in tm.items() if s == INVALID)
        assert not invalid, f"{spec.name}: invalid at (line, column) {invalid[:5]}"
        py = _chars_pygments(text)
        lines = text.split("\n")
        differ = [
            (f"{spec.name}:{ln + 1}:{col + 1}", lines[ln][col : col + 12], py.get((ln, col)), tm.get((ln, col)))
            for ln, col in sorted(set(tm) | set(py))
            if tm.get((ln, col)) != py.get((ln, col))
        ]
        assert not differ, differ[:10]
    assert set(used) - {None} == set(TEXTMATE_SCOPES.values())


def test_the_textmate_grammar_marks_what_it_cannot_read(textmate) -> None:
    scopes = set(_chars_textmate(textmate, "conv(3) @ $\n").values())
    assert INVALID in scopes and "support.function.layer.cnnspec" in scopes
