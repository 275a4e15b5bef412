"""Stage 1, the grammar and the parser: text to AST, spans, and syntax errors.

These tests stop at the AST (cnnspec.syntax.parser.parse / parse_expr) and at the
expression evaluator; meaning is the elaborator's and is tested in
test_elaborate.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import SPECS

from cnnspec import Diagnostic, SpecError
from cnnspec.semantics.values import evaluate
from cnnspec.syntax import ast
from cnnspec.syntax.parser import grammar_text, parse, parse_expr


def one_network(text: str) -> ast.NetworkDef:
    """The only item of a file that must be a network definition."""
    module = parse(text, "t.cnn")
    assert len(module.items) == 1
    item = module.items[0]
    assert isinstance(item, ast.NetworkDef)
    return item


def value(text: str, **env: object) -> object:
    """Parse and evaluate one expression."""
    return evaluate(parse_expr(text), env)


def syntax_error(text: str) -> Diagnostic:
    """The span of the single diagnostic that parsing text raises."""
    with pytest.raises(SpecError) as e:
        parse(text, "bad.cnn")
    (d,) = e.value.diagnostics
    assert d.severity == "error" and d.code.startswith("E0"), d
    assert d.span is not None and d.span.file == "bad.cnn"
    return d


# ----------------------------------------------------------------- structure


def test_every_stock_file_parses() -> None:
    for path in sorted(SPECS.glob("*.cnn")):
        module = parse(path.read_text(), path.name)
        assert module.items, path


def test_the_grammar_is_the_one_of_this_source_tree() -> None:
    # Not the copy of whichever checkout pip installed: a worktree tests its own grammar.
    assert grammar_text() == (Path(__file__).resolve().parents[1] / "grammar" / "cnnspec.lark").read_text()


def test_items_of_a_file() -> None:
    module = parse(
        'import "other.cnn"\n'
        "block B(c, k = 3) { conv(c, k) }\n"
        "network N(w = 2) { input: 3 x 8 x 8\n B(w) }\n"
        "network M = N(w = 4)\n",
        "t.cnn",
    )
    imp, block, net, alias = module.items
    assert isinstance(imp, ast.Import) and imp.path == "other.cnn"
    assert isinstance(block, ast.BlockDef) and block.name == "B"
    assert [p.name for p in block.params] == ["c", "k"]
    assert block.params[0].default is None
    assert isinstance(block.params[1].default, ast.Num) and block.params[1].default.value == 3
    assert isinstance(net, ast.NetworkDef) and net.name == "N"
    assert isinstance(alias, ast.NetworkAlias) and (alias.name, alias.target) == ("M", "N")
    assert [(a.name, a.value.value) for a in alias.args] == [("w", 4)]  # type: ignore[attr-defined]


def test_empty_file_and_comment_only_file() -> None:
    assert parse("", "t.cnn").items == []
    assert parse("# nothing here\n\n# at all\n", "t.cnn").items == []


def test_comments_blank_lines_and_semicolons() -> None:
    net = one_network(
        "# a comment before\n"
        "network N {   # trailing comment\n"
        "\n"
        "    input: 3 x 8 x 8   # the input\n"
        "    # a whole-line comment\n"
        "    conv(4, 3); relu ;; relu\n"
        "\n\n"
        "}\n"
    )
    stmts = net.body
    assert isinstance(stmts[0], ast.InputStmt)
    assert [s.name for s in stmts[1:]] == ["conv", "relu", "relu"]  # type: ignore[attr-defined]


def test_multi_line_argument_lists_and_lists() -> None:
    net = one_network(
        "network N(\n"
        "    cfg = [\n"
        "        64, 64,\n"
        '        "M",\n'
        "    ],\n"
        "    k = 3,\n"
        ") {\n"
        "    input: 3 x 8 x 8\n"
        "    conv(\n"
        "        64,\n"
        "        k,\n"
        "        padding = 1,\n"
        "    )\n"
        "}\n"
    )
    assert [p.name for p in net.params] == ["cfg", "k"]
    cfg = net.params[0].default
    assert isinstance(cfg, ast.ListExpr) and [i.value for i in cfg.items] == [64, 64, "M"]  # type: ignore[attr-defined]
    (call,) = net.body[1:]
    assert isinstance(call, ast.CallStmt)
    assert [a.name for a in call.args] == [None, None, "padding"]


def test_backslash_continues_a_line() -> None:
    net = one_network("network N {\n input: 3 x \\\n 8 x 8\n relu\n}\n")
    assert isinstance(net.body[0], ast.InputStmt) and len(net.body[0].dims) == 3


def test_statement_forms() -> None:
    net = one_network(
        "network N(n = 2) {\n"
        "    input: 3 x 8 x 8\n"
        "    init conv: weight = kaiming_normal(mode = \"fan_out\"), bias = zeros\n"
        "    let c = 4 * n\n"
        "    stem: conv(c, 3)\n"
        '    "unit{1}": relu * n\n'
        "    body { relu }\n"
        "    { relu }\n"
        "    residual { conv(c, 3, padding = 1) } shortcut proj { conv(c, 1) }\n"
        "    if n > 1 { relu } else if n == 1 { relu } else { relu }\n"
        "    for v in [1, 2] { relu }\n"
        "    aux(weight = 0.3) { flatten }\n"
        "    concat { relu; relu }\n"
        "}\n"
    )
    kinds = [type(s).__name__ for s in net.body]
    assert kinds == [
        "InputStmt", "InitStmt", "LetStmt", "CallStmt", "CallStmt", "GroupStmt", "GroupStmt",
        "ResidualStmt", "IfStmt", "ForStmt", "AuxStmt", "GroupStmt",
    ]
    init = net.body[1]
    assert isinstance(init, ast.InitStmt) and init.kind == "conv" and init.pattern is None
    assert [(a.target, a.scheme) for a in init.assigns] == [("weight", "kaiming_normal"), ("bias", "zeros")]
    stem = net.body[3]
    assert isinstance(stem, ast.CallStmt) and stem.label is not None
    assert (stem.label.text, stem.label.is_template) == ("stem", False)
    rep = net.body[4]
    assert isinstance(rep, ast.CallStmt) and rep.label is not None
    assert (rep.label.text, rep.label.is_template) == ("unit{1}", True)
    assert isinstance(rep.repeat, ast.Name) and rep.repeat.id == "n"
    group, anon = net.body[5], net.body[6]
    assert isinstance(group, ast.GroupStmt) and group.name == "body"
    assert isinstance(anon, ast.GroupStmt) and anon.name is None
    res = net.body[7]
    assert isinstance(res, ast.ResidualStmt) and res.shortcut is not None and res.shortcut.name == "proj"
    cond = net.body[8]
    assert isinstance(cond, ast.IfStmt) and cond.orelse is not None
    assert isinstance(cond.orelse[0], ast.IfStmt)  # else if nests
    loop = net.body[9]
    assert isinstance(loop, ast.ForStmt) and loop.var == "v"
    join = net.body[11]
    assert isinstance(join, ast.GroupStmt) and join.name == "concat" and len(join.body) == 2


def test_repeat_of_a_parenthesised_count() -> None:
    net = one_network("network N(b = 3) { input: 4\n unit(1) * (b - 1)\n}")
    call = net.body[1]
    assert isinstance(call, ast.CallStmt)
    assert isinstance(call.repeat, ast.Binary) and call.repeat.op == "-"


# -------------------------------------------------------------------- spans


def test_spans_point_at_the_source() -> None:
    text = "network N {\n    input: 3 x 8 x 8\n    conv1: conv(64, 3, stride = 2)\n}\n"
    net = one_network(text)
    call = net.body[1]
    assert isinstance(call, ast.CallStmt)
    # The labelled statement starts at its label; the callee name has its own span.
    assert (call.span.line, call.span.col) == (3, 5)
    assert (call.name_span.line, call.name_span.col, call.name_span.end_col) == (3, 12, 16)
    kw = call.args[2]
    assert kw.name == "stride"
    assert (kw.span.line, kw.span.col) == (3, 24)
    assert (kw.value.span.line, kw.value.span.col) == (3, 33)
    assert net.name_span.line == 1 and net.name_span.col == 9


def _walk(obj: object, seen: Callable[[object], None]) -> None:
    seen(obj)
    if isinstance(obj, list):
        for x in obj:
            _walk(x, seen)
    elif hasattr(obj, "__slots__") and type(obj).__module__ == ast.__name__:
        for slot in type(obj).__slots__:
            _walk(getattr(obj, slot), seen)
        for base in type(obj).__mro__[1:]:
            for slot in getattr(base, "__slots__", ()):
                _walk(getattr(obj, slot), seen)


@pytest.mark.parametrize("name", ["resnet.cnn", "googlenet.cnn", "vgg.cnn"])
def test_every_node_of_a_stock_file_has_a_span(name: str) -> None:
    text = (SPECS / name).read_text()
    nodes: list[object] = []
    _walk(parse(text, name).items, nodes.append)
    n_lines = len(text.splitlines())
    checked = 0
    for node in nodes:
        if isinstance(node, (ast.Expr, ast.Stmt, ast.Arg, ast.Param, ast.BlockDef, ast.NetworkDef)):
            span = node.span
            assert span.file == name
            assert 1 <= span.line <= span.end_line <= n_lines, node
            assert span.col >= 1, node
            checked += 1
    assert checked > 50


# --------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("2 ** 3 ** 2", 512),
        ("-2 ** 2", -4),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("7 / 2", 3.5),
        ("1e-3", 0.001),
        (".5", 0.5),
        ("2.5e2", 250.0),
        ("[1, 2, 3][1]", 2),
        ("[1, 2, 3][-1]", 3),
        ("[1, 2] + [3]", [1, 2, 3]),
        ('"a" + "b"', "ab"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("1 < 2 and not 3 < 2", True),
        ("false or 2 >= 2", True),
        ("1 if 2 > 3 else 4", 4),
        ("max(3, 9, 4)", 9),
        ("int(64 * 0.75)", 48),
        ("len(range(5))", 5),
        ("sum([1, 2, 3])", 6),
        ("cumsum([1, 2, 3])", [1, 3, 6]),
        ("divisible(37)", 40),
        ("true == true", True),
    ],
)
def test_expression_values(text: str, expected: object) -> None:
    got = value(text)
    assert got == expected and type(got) is type(expected)


def test_names_and_attributes_in_expressions() -> None:
    e = parse_expr("layers[i] * width / 64")
    assert isinstance(e, ast.Binary) and e.op == "/"
    assert value("layers[i] * width / 64", layers=[3, 4], i=1, width=128) == 8.0


def test_each_parse_builds_its_own_ast() -> None:
    # No parse is cached between calls: a caller that changes its AST changes no one else's.
    text = "network N {\n    input: 3 x 8 x 8\n    conv(4, 3)\n}\n"
    first, second = parse(text, "n.cnn"), parse(text, "n.cnn")
    assert first == second and first is not second
    first.items.clear()
    assert parse(text, "n.cnn") == second


def test_a_syntax_error_leaves_no_open_bracket_to_the_next_parse() -> None:
    # The post-lexer's bracket stack belongs to one parse: an unclosed `(` here must not make
    # the next text's newlines look as if they were inside brackets.
    with pytest.raises(SpecError):
        parse("network N {\n    input: 3 x (8\n", "bad.cnn")
    module = parse("network N {\n    input: 3 x 8 x 8\n    relu\n    relu\n}\n", "n.cnn")
    (net,) = module.items
    assert isinstance(net, ast.NetworkDef) and len(net.body) == 3


def test_expression_syntax_error_has_a_span() -> None:
    with pytest.raises(SpecError) as e:
        parse_expr("[1, 2", "--set layers")
    (d,) = e.value.diagnostics
    assert d.span is not None and d.span.file == "--set layers"


ints = st.integers(min_value=-1000, max_value=1000)


@st.composite
def int_exprs(draw: st.DrawFn, depth: int = 3) -> str:
    """Random integer expressions over + - * // % and parentheses, as Python writes them."""
    if depth == 0 or draw(st.booleans()):
        n = draw(ints)
        return f"({n})" if n < 0 else str(n)
    op = draw(st.sampled_from(["+", "-", "*", "//", "%"]))
    left = draw(int_exprs(depth=depth - 1))
    right = draw(int_exprs(depth=depth - 1))
    if draw(st.booleans()):
        return f"({left} {op} {right})"
    return f"{left} {op} {right}"


@settings(max_examples=200, deadline=None)
@given(int_exprs())
def test_integer_arithmetic_is_pythons(text: str) -> None:
    try:
        expected = eval(text)  # a string of digits, parentheses and operators only
    except ZeroDivisionError:
        with pytest.raises(Exception, match="division by zero"):
            value(text)
        return
    assert value(text) == expected


# ------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "line", "col", "words"),
    [
        ("network N {\n  input: 3 x 8 x 8\n  conv(64 3)\n}\n", 3, 11, "`,`"),
        ("network N {\n  input: 3 x 8 x 8\n  conv(64, 3\n}\n", 4, 1, "`)`"),
        ("network N {\n  input: 3 x 8 x 8\n  conv1 = conv(64, 3)\n}\n", 3, 9, "`:`"),
        ("network N {\n  input: 3 x 8 x 8\n  relu\n}\n}\n", 5, 1, "`}`"),
        ("network N {\n  input: 3 x 8 x 8\n  conv(64, 3, stride: 2)\n}\n", 3, 21, "`=`"),
        ("network N {\n  input: 3 x 8 x 8\n  @relu\n}\n", 3, 3, "`@`"),
        ("network N {\n  input: 3 x 8 x 8\n  conv(64, 'a')\n}\n", 3, 12, "double quotes"),
        ("block B(c) {\n  conv(c, 3)\n", 1, 12, "never closed"),
        ("netwrk N { relu }\n", 1, 1, "`block`, `network` or `import`"),
    ],
)
def test_syntax_errors_point_at_the_token(text: str, line: int, col: int, words: str) -> None:
    d = syntax_error(text)
    assert (d.span.line, d.span.col) == (line, col), d
    rendered = d.message + " " + " ".join(d.help) + " " + " ".join(n.message for n in d.notes)
    assert words in rendered, rendered


def test_unclosed_bracket_note_points_at_the_opener() -> None:
    d = syntax_error("network N {\n  input: 3 x 8 x 8\n  conv(64,\n")
    assert d.code == "E003" and "never closed" in d.message
    assert (d.span.line, d.span.col) == (3, 7)
    assert d.notes and d.notes[0].message == "the file ends here"


def test_a_syntax_error_in_an_imported_file_names_that_file(tmp_path: Path) -> None:
    import cnnspec

    (tmp_path / "lib.cnn").write_text("block B(c) {\n  conv(c 3)\n}\n")
    main = tmp_path / "main.cnn"
    main.write_text('import "lib.cnn"\nnetwork N { input: 3 x 8 x 8\n B(4) }\n')
    with pytest.raises(SpecError) as e:
        cnnspec.check(main)
    (d,) = e.value.errors
    assert d.span is not None and d.span.file.endswith("lib.cnn") and d.span.line == 2


def test_an_init_statement_may_name_a_module_path_pattern() -> None:
    net = one_network('network N {\n input: 3 x 8 x 8\n init batchnorm "layer*.*.bn3": weight = zeros\n relu\n}\n')
    init = net.body[1]
    assert isinstance(init, ast.InitStmt)
    assert (init.kind, init.pattern) == ("batchnorm", "layer*.*.bn3")
    assert init.pattern_span is not None
    assert (init.pattern_span.line, init.pattern_span.col, init.pattern_span.end_col) == (3, 17, 31)


def test_a_body_left_open_mid_file_is_named_by_its_brace() -> None:
    d = syntax_error("block B(c) {\n    conv(c, 3)\n\nnetwork N {\n    input: 3 x 8 x 8\n    B(4)\n}\n")
    assert d.code == "E003" and (d.span.line, d.span.col) == (1, 12), d
    assert d.help == ["add `}` before line 4"]
    assert d.notes[-1].span is not None and (d.notes[-1].span.line, d.notes[-1].span.col) == (4, 9)


def test_the_layout_names_the_inner_body_left_open() -> None:
    text = "network N {\n  input: 3 x 8 x 8\n  a {\n    relu\n  b {\n    relu\n  }\n  relu\n}\n"
    d = syntax_error(text)
    assert d.code == "E003" and (d.span.line, d.span.col) == (3, 5), d
    assert d.help == ["add `}` before line 5"]
    assert d.notes[-1].message == "the file ends here"


@pytest.mark.parametrize(
    "text",
    [
        # loosely indented but balanced: the error is the missing comma, not a brace
        "network N {\n  input: 3 x 8 x 8\n  a {\n    relu\n  relu\n  }\n  conv(64 3)\n}\n",
        # not indented at all: the layout says nothing
        "network N {\ninput: 3 x 8 x 8\nconv(64 3)\nrelu\n}\n",
    ],
)
def test_the_layout_blames_no_brace_when_the_braces_balance(text: str) -> None:
    d = syntax_error(text)
    assert d.code == "E002" and "`,`" in " ".join(d.help), d


def test_a_body_with_its_brace_stays_valid_however_laid_out() -> None:
    one_network("network N {\ninput: 3 x 8 x 8\n  a {\nrelu\n}\nrelu\n}\n")
