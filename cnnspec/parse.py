"""Text to AST: the Lark LALR parser, its post-lexer, and the AST builder.

The transformer only builds nodes from cnnspec.ast; nothing here knows what
a layer or a block means. Syntax errors become diagnostics that say what was
expected in words.
"""

from __future__ import annotations

import ast as pyast
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from cnnspec import ast
from cnnspec.diagnostics import Diagnostic, Note, SpecError
from cnnspec.source import SourceMap, Span

def grammar_text() -> str:
    """The grammar shipped with the package (grammar/cnnspec.lark in the source tree)."""
    try:
        return resources.files("cnnspec.grammar").joinpath("cnnspec.lark").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return (Path(__file__).resolve().parent.parent / "grammar" / "cnnspec.lark").read_text()


class _Separators:
    """Post-lexer: newlines inside () and [] are not separators; runs of them fold into one.

    It also drops separators right after `{`, so a body may open on its own
    line. Tokens are never held back: the contextual lexer lexes each token in
    the parser state that the previous one left.
    """

    always_accept = ("_SEP",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        last: str | None = None
        for tok in stream:
            if tok.type == "_SEP":
                if depth > 0 or last in (None, "LBRACE", "_SEP"):
                    continue
            elif tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            yield tok
            last = tok.type


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        grammar_text(),
        start=["start", "expr"],
        parser="lalr",
        lexer="contextual",
        postlex=_Separators(),
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,  # a pickled parser in the temp dir: saves ~0.2 s at every start
    )


#: Parsed files by (name, text). The AST is never mutated after parsing, so one
#: process that checks many networks of a family parses each file once.
_PARSED: dict[tuple[str, str], ast.Module] = {}
_PARSED_MAX = 64


def parse(text: str, file: str, sources: SourceMap | None = None) -> ast.Module:
    """Parse one file's text into an ast.Module, or raise SpecError."""
    if sources is not None:
        sources.add(file, text)
    key = (file, text)
    module = _PARSED.get(key)
    if module is None:
        module = _parse_uncached(text, file, sources)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = module
    return module


def _parse_uncached(text: str, file: str, sources: SourceMap | None) -> ast.Module:
    try:
        tree = _parser().parse(text, start="start")
    except UnexpectedInput as e:
        raise SpecError([syntax_diagnostic(e, text, file)], sources) from None
    try:
        return _Builder(file).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, SpecError):
            raise SpecError(e.orig_exc.diagnostics, sources) from None
        raise


def parse_expr(text: str, file: str = "<--set>") -> ast.Expr:
    """Parse one expression, e.g. the value of `--set layers=[3, 4, 6, 3]`; raises SpecError."""
    sources = SourceMap()
    sources.add(file, text)
    try:
        tree = _parser().parse(text, start="expr")
    except UnexpectedInput as e:
        raise SpecError([syntax_diagnostic(e, text, file)], sources) from None
    return _Builder(file).transform(tree)


# ------------------------------------------------------------ syntax errors

_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "COMMA": "`,`",
    "COLON": "`:`",
    "EQUAL": "`=`",
    "STAR": "`*`",
    "DOT": "`.`",
    "_SEP": "a new line",
    "COMP_OP": "a comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*` or `/`",
    "MINUS": "`-`",
    "$END": "the end of the file",
}


def _word(term: str) -> str:
    if term in _WORDS:
        return _WORDS[term]
    return f"`{term.lower()}`"


def _describe_expected(expected: set[str]) -> str:
    exp = set(expected)
    if {"NAME", "RBRACE"} <= exp and ("RESIDUAL" in exp or "LBRACE" in exp):
        return "expected a layer, a block call or `}`"
    if {"BLOCK", "NETWORK", "IMPORT"} <= exp:
        return "expected `block`, `network` or `import`"
    if "NUMBER" in exp and "NAME" in exp:
        rest = sorted(exp - {"NUMBER", "NAME", "STRING", "LSQB", "LPAR", "MINUS", "TRUE", "FALSE", "IN", "NOT"})
        words = ["an expression"] + [_word(t) for t in rest]
        return "expected " + _join(words)
    words = sorted(_word(t) for t in exp)
    return "expected " + _join(words)


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _token_text(tok: Token) -> str:
    if tok.type == "_SEP":
        return "a new line" if "\n" in str(tok) else "`;`"
    if tok.type == "$END":
        return "the end of the file"
    return f"`{tok}`"


def syntax_diagnostic(e: UnexpectedInput, text: str, file: str) -> Diagnostic:
    """Turn a Lark error into a diagnostic that says, in words, what was expected."""
    helps: list[str] = []
    notes: list[Note] = []
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = Span(file, e.line, e.column, e.line, e.column + 1)
        msg = f"unexpected character `{ch}`"
        if ch == "=":
            helps.append("compare with `==`; `=` only sets a keyword argument or a default")
        elif ch in "'":
            helps.append('strings use double quotes: "..."')
        return Diagnostic("E001", msg, span, help=helps)
    if isinstance(e, UnexpectedEOF):
        lines = text.splitlines() or [""]
        span = Span(file, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
        opener = _unclosed_opener(text, file)
        msg = f"unexpected end of file; {_describe_expected(set(e.expected))}"
        if opener is not None:
            notes.append(Note("this bracket is never closed", opener))
            helps.append("add the missing closing bracket")
        return Diagnostic("E002", msg, span, notes=notes, help=helps)
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    line = tok.line or e.line
    col = tok.column or e.column
    if tok.type == "$END":
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
    end_col = (tok.end_column or col + 1) if tok.type not in ("_SEP", "$END") else col + 1
    span = Span(file, line, col, line, max(end_col, col + 1))
    expected = set(e.accepts or e.expected)
    if tok.type == "$END":
        opener = _unclosed_opener(text, file)
        if opener is not None:
            notes.append(Note("this bracket is never closed", opener))
            helps.append("add the missing closing bracket")
    msg = (
        f"unexpected end of file; {_describe_expected(expected)}"
        if tok.type == "$END"
        else f"unexpected {_token_text(tok)}; {_describe_expected(expected)}"
    )
    if tok.type == "EQUAL" and "COLON" in expected:
        helps.append("name a layer with `:`, as in `conv1: conv(64, 3)`; `=` sets keyword arguments")
    elif tok.type == "COLON" and "EQUAL" in expected:
        helps.append("keyword arguments use `=`, as in `conv(64, 3, stride = 2)`")
    elif "COMMA" in expected and tok.type in ("NAME", "NUMBER", "STRING", "LSQB", "TRUE", "FALSE"):
        helps.append("separate arguments with `,`")
    elif tok.type == "RBRACE" and "RBRACE" not in expected:
        helps.append("this `}` has no matching `{`; check the braces above")
    elif tok.type in ("RPAR", "RSQB") and tok.type not in expected:
        helps.append(f"this `{tok}` has no matching opening bracket")
    return Diagnostic("E002", msg, span, notes=notes, help=helps)


def _unclosed_opener(text: str, file: str) -> Span | None:
    """The innermost bracket left open at the end of the text, ignoring comments and strings."""
    stack: list[tuple[str, int, int]] = []
    line, col = 1, 1
    in_comment = in_string = False
    for ch in text:
        if ch == "\n":
            line, col = line + 1, 1
            in_comment = False
            continue
        if in_comment:
            pass
        elif in_string:
            in_string = ch != '"'
        elif ch == "#":
            in_comment = True
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            stack.append((ch, line, col))
        elif ch in ")]}" and stack:
            stack.pop()
        col += 1
    if not stack:
        return None
    _, line, col = stack[-1]
    return Span(file, line, col, line, col + 1)


# -------------------------------------------------------------- AST builder


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line or 0, tok.column or 0, tok.end_line or tok.line or 0, tok.end_column or 0)


@v_args(meta=True, inline=True)
class _Builder(Transformer):
    """Builds cnnspec.ast nodes from the parse tree; nothing more."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def _span(self, meta: Any) -> Span:
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    # items
    def __default__(self, data: Any, children: Any, meta: Any) -> Any:
        # An `expr` start whose rule is inlined arrives here as a one-child tree.
        if data == "expr" and len(children) == 1:
            return children[0]
        return super().__default__(data, children, meta)

    def start(self, meta: Any, *items: Any) -> ast.Module:
        return ast.Module(self.file, [i for i in items if i is not None])

    def import_stmt(self, meta: Any, path: Token) -> ast.Import:
        return ast.Import(_unquote(path), self._span(meta))

    def block_def(self, meta: Any, name: Token, params: list | None, body: list) -> ast.BlockDef:
        return ast.BlockDef(str(name), params or [], body, self._span(meta), _tok_span(self.file, name))

    def network_def(self, meta: Any, name: Token, params: list | None, body: list) -> ast.NetworkDef:
        return ast.NetworkDef(str(name), params or [], body, self._span(meta), _tok_span(self.file, name))

    def network_alias(self, meta: Any, name: Token, target: Token, args: list | None) -> ast.NetworkAlias:
        return ast.NetworkAlias(
            str(name), str(target), _tok_span(self.file, target), args or [], self._span(meta), _tok_span(self.file, name)
        )

    def params(self, meta: Any, *params: ast.Param) -> list[ast.Param]:
        return list(params)

    def param(self, meta: Any, name: Token, default: ast.Expr | None) -> ast.Param:
        return ast.Param(str(name), default, self._span(meta))

    def body(self, meta: Any, *stmts: Any) -> list[ast.Stmt]:
        return [s for s in stmts if s is not None]

    # statements
    def input_stmt(self, meta: Any, *dims: ast.Expr) -> ast.InputStmt:
        return ast.InputStmt(self._span(meta), list(dims))

    def init_stmt(self, meta: Any, kind: Token, *assigns: ast.InitAssign) -> ast.InitStmt:
        return ast.InitStmt(self._span(meta), str(kind), _tok_span(self.file, kind), list(assigns))

    def init_assign(self, meta: Any, target: Token, scheme: Token, args: list | None) -> ast.InitAssign:
        return ast.InitAssign(str(target), str(scheme), args or [], self._span(meta))

    def labelled(self, meta: Any, label: ast.Label, stmt: ast.Stmt) -> ast.Stmt:
        stmt.label = label
        stmt.span = label.span.to(stmt.span)
        return stmt

    def label(self, meta: Any, tok: Token) -> ast.Label:
        if tok.type == "STRING":
            return ast.Label(_unquote(tok), True, self._span(meta))
        return ast.Label(str(tok), False, self._span(meta))

    def call_stmt(self, meta: Any, name: Token, args: list | None, repeat: ast.Expr | None) -> ast.CallStmt:
        return ast.CallStmt(self._span(meta), str(name), _tok_span(self.file, name), args or [], repeat)

    def repeat(self, meta: Any, expr: ast.Expr) -> ast.Expr:
        return expr

    def group_stmt(self, meta: Any, name: Token, body: list) -> ast.GroupStmt:
        return ast.GroupStmt(self._span(meta), str(name), _tok_span(self.file, name), body)

    def anon_group(self, meta: Any, body: list) -> ast.GroupStmt:
        return ast.GroupStmt(self._span(meta), None, None, body)

    def residual_stmt(self, meta: Any, body: list, shortcut: ast.Shortcut | None) -> ast.ResidualStmt:
        return ast.ResidualStmt(self._span(meta), body, shortcut)

    def shortcut(self, meta: Any, name: Token | None, body: list) -> ast.Shortcut:
        return ast.Shortcut(str(name) if name is not None else None, body, self._span(meta))

    def if_stmt(self, meta: Any, cond: ast.Expr, then: list, orelse: list | None) -> ast.IfStmt:
        return ast.IfStmt(self._span(meta), cond, then, orelse)

    def else_clause(self, meta: Any, body: Any) -> list[ast.Stmt]:
        return body if isinstance(body, list) else [body]

    def for_stmt(self, meta: Any, var: Token, it: ast.Expr, body: list) -> ast.ForStmt:
        return ast.ForStmt(self._span(meta), str(var), it, body)

    def let_stmt(self, meta: Any, name: Token, value: ast.Expr) -> ast.LetStmt:
        return ast.LetStmt(self._span(meta), str(name), value)

    def aux_stmt(self, meta: Any, args: list | None, body: list) -> ast.AuxStmt:
        return ast.AuxStmt(self._span(meta), args or [], body)

    def cond_expr(self, meta: Any, then: ast.Expr, cond: ast.Expr, orelse: ast.Expr) -> ast.CondExpr:
        return ast.CondExpr(self._span(meta), cond, then, orelse)

    def args(self, meta: Any, *args: ast.Arg) -> list[ast.Arg]:
        return list(args)

    def positional(self, meta: Any, value: ast.Expr) -> ast.Arg:
        return ast.Arg(None, value, self._span(meta))

    def keyword(self, meta: Any, name: Token, value: ast.Expr) -> ast.Arg:
        return ast.Arg(str(name), value, self._span(meta))

    # expressions
    def or_op(self, meta: Any, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), "or", a, b)

    def and_op(self, meta: Any, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), "and", a, b)

    def not_op(self, meta: Any, a: ast.Expr) -> ast.Unary:
        return ast.Unary(self._span(meta), "not", a)

    def compare(self, meta: Any, a: ast.Expr, op: Token, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), str(op), a, b)

    def binary(self, meta: Any, a: ast.Expr, op: Token, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), str(op), a, b)

    def pow(self, meta: Any, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), "**", a, b)

    def neg(self, meta: Any, _minus: Token, a: ast.Expr) -> ast.Unary:
        return ast.Unary(self._span(meta), "-", a)

    def index(self, meta: Any, obj: ast.Expr, idx: ast.Expr) -> ast.Index:
        return ast.Index(self._span(meta), obj, idx)

    def attribute(self, meta: Any, obj: ast.Expr, name: Token) -> ast.Attribute:
        return ast.Attribute(self._span(meta), obj, str(name))

    def number(self, meta: Any, tok: Token) -> ast.Num:
        s = str(tok)
        value: int | float = float(s) if any(c in s for c in ".eE") else int(s)
        return ast.Num(self._span(meta), value)

    def string(self, meta: Any, tok: Token) -> ast.Str:
        return ast.Str(self._span(meta), _unquote(tok))

    def true(self, meta: Any) -> ast.Bool:
        return ast.Bool(self._span(meta), True)

    def false(self, meta: Any) -> ast.Bool:
        return ast.Bool(self._span(meta), False)

    def block_input(self, meta: Any) -> ast.BlockInput:
        return ast.BlockInput(self._span(meta))

    def name(self, meta: Any, tok: Token) -> ast.Name:
        return ast.Name(self._span(meta), str(tok))

    def func_call(self, meta: Any, name: Token, args: list | None) -> ast.FuncCall:
        return ast.FuncCall(self._span(meta), str(name), args or [])

    def list(self, meta: Any, *items: ast.Expr | None) -> ast.ListExpr:
        return ast.ListExpr(self._span(meta), [i for i in items if i is not None])

    def list_comp(self, meta: Any, item: ast.Expr, var: Token, it: ast.Expr) -> ast.ListComp:
        return ast.ListComp(self._span(meta), item, str(var), it)


def _unquote(tok: Token | str) -> str:
    # The STRING terminal only admits simple escapes, which Python's literal rules read the same way.
    return str(pyast.literal_eval(str(tok)))
