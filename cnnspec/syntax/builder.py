"""The AST builder: Lark's transformer, called at each reduction, making cnnspec.syntax.ast nodes.

It only builds nodes and reads literals; errors in a literal (a bad escape, a
number out of range, a list over the limit) go to the running parse's state
and are reported after parsing. Meaning is checked later, in semantics/.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Token, Transformer, Tree, v_args

from cnnspec.diagnostics import Diagnostic, SpecError
from cnnspec.diagnostics.codes import E002, E004, E005, E218, E610
from cnnspec.syntax import ast
from cnnspec.syntax.ast import MAX_INT
from cnnspec.syntax.limits import MAX_LIST_ITEMS
from cnnspec.syntax.source import Span
from cnnspec.syntax.state import CURRENT, tok_span

#: The terminals whose text a rule reads; every other token (keywords, brackets, commas,
#: separators) only marks where a node starts or ends.
_VALUE_TOKENS = frozenset({"NAME", "NUMBER", "STRING", "COMP_OP", "ADD_OP", "MUL_OP", "MINUS"})


@dataclass(slots=True)
class Built:
    """What a reduction leaves on the parser's stack: the value built (an AST node, a list of
    them), and what a parse tree's node would tell about it.

    extent: the text it covers, brackets around an expression included (the parent's span
    starts and ends there); line, column: where the node itself starts (a parenthesised
    expression starts inside); height: how many nodes deep it is; kids: the Built it was made
    from, kept to name the node that is too deep when height passes MAX_NESTING.
    """

    value: Any
    extent: Span
    line: int
    column: int
    height: int
    kids: list[Built]


def _node(f: Any, _rule: str, children: list[Any], _meta: Any) -> Built:
    """Build one node (Lark's visit wrapper for each rule): call the rule's method with the span
    of everything the rule matched and the values it reads, in order; absent optional parts
    (None) and keyword or bracket tokens are left out."""
    values: list[Any] = []
    kids: list[Built] = []
    height = 0
    first = last = None  # the first and last child present: the span runs from one to the other
    for child in children:
        if child is None:
            continue
        if isinstance(child, Built):
            kids.append(child)
            values.append(child.value)
            height = max(height, child.height)
        elif child.type in _VALUE_TOKENS:
            values.append(child)
        if first is None:
            first = child
        last = child
    span = _span_between(first, last)
    return Built(f(span, *values), span, span.line, span.col, height + 1, kids)


def _span_between(first: Built | Token | None, last: Built | Token | None) -> Span:
    """The span from the start of first to the end of last (an empty rule's: the file's start)."""
    file = CURRENT.get().file
    if first is None or last is None:
        return Span(file, 1, 1, 1, 1)
    if isinstance(first, Built):
        line, col = first.extent.line, first.extent.col
    else:
        line, col = first.line, first.column
    if isinstance(last, Built):
        return Span(file, line, col, last.extent.end_line, last.extent.end_col)
    return Span(file, line, col, last.end_line, last.end_column)


def _parenthesised(_f: Any, _rule: str, children: list[Any], _meta: Any) -> Built:
    """`( expr )`: the expression itself, its extent grown to the brackets (no node of its own)."""
    lpar, inner, rpar = children
    extent = Span(inner.extent.file, lpar.line, lpar.column, rpar.end_line, rpar.end_column)
    return Built(inner.value, extent, inner.line, inner.column, inner.height, inner.kids)


@v_args(wrapper=_node)
class Builder(Transformer[Token, Any]):
    """Builds cnnspec.syntax.ast nodes as the parser reduces; nothing more.

    Each rule's method takes the span of what the rule matched and the values it reads (see
    _node), built bottom up. The builder keeps no state: one serves every parse and thread;
    the file name and the errors found are the running parse's (CURRENT). parse_expr parses
    the expressions in a label's braces: the parser's own, passed in because the parser
    imports this module.
    """

    def __init__(self, parse_expr: Callable[[str, str], ast.Expr]) -> None:
        super().__init__()
        self.parse_expr = parse_expr

    def __default__(self, data: str, children: list[Any], meta: Any) -> Any:
        # Only rules that Lark inlines into their parent (_stmt, x* ...) come here; it reads the children.
        return Tree(data, children)

    # items

    def start(self, span: Span, *items: Any) -> ast.Module:
        return ast.Module(span.file, list(items))

    def import_stmt(self, span: Span, path: Token) -> ast.Import:
        return ast.Import(_string(path), span)

    def block_def(self, span: Span, name: Token, *params_body: list) -> ast.BlockDef:
        params, body = params_body if len(params_body) == 2 else ([], params_body[0])
        return ast.BlockDef(str(name), params, body, span, tok_span(span.file, name))

    def network_def(self, span: Span, name: Token, *params_body: list) -> ast.NetworkDef:
        params, body = params_body if len(params_body) == 2 else ([], params_body[0])
        return ast.NetworkDef(str(name), params, body, span, tok_span(span.file, name))

    def network_alias(self, span: Span, name: Token, target: Token, args: list | None = None) -> ast.NetworkAlias:
        target_span, name_span = tok_span(span.file, target), tok_span(span.file, name)
        return ast.NetworkAlias(str(name), str(target), target_span, args or [], span, name_span)

    def params(self, span: Span, *params: ast.Param) -> list[ast.Param]:
        return list(params)

    def param(self, span: Span, name: Token, default: ast.Expr | None = None) -> ast.Param:
        return ast.Param(str(name), default, span)

    def body(self, span: Span, *stmts: ast.Stmt) -> list[ast.Stmt]:
        return list(stmts)

    # statements
    def input_stmt(self, span: Span, *dims: ast.Expr) -> ast.InputStmt:
        return ast.InputStmt(span, list(dims))

    def init_stmt(self, span: Span, kind: Token, *rest: Any) -> ast.InitStmt:
        pattern = rest[0] if isinstance(rest[0], Token) else None
        assigns = list(rest[1:] if pattern is not None else rest)
        return ast.InitStmt(
            span,
            str(kind),
            tok_span(span.file, kind),
            assigns,
            _string(pattern) if pattern is not None else None,
            tok_span(span.file, pattern) if pattern is not None else None,
        )

    def init_assign(self, span: Span, target: Token, scheme: Token, args: list | None = None) -> ast.InitAssign:
        return ast.InitAssign(str(target), str(scheme), args or [], span)

    def labelled(self, span: Span, label: ast.Label, stmt: ast.Stmt) -> ast.Stmt:
        stmt.label = label
        stmt.span = span
        return stmt

    def label(self, span: Span, tok: Token) -> ast.Label:
        if tok.type == "STRING":
            text = _string(tok)
            parts = _template_parts(tok, span, self.parse_expr) if "{" in text else []
            return ast.Label(text, True, span, parts)
        return ast.Label(str(tok), False, span)

    def call_stmt(self, span: Span, name: Token, *args_repeat: Any) -> ast.CallStmt:
        _not_a_clause(span.file, name)
        args = args_repeat[0] if args_repeat and isinstance(args_repeat[0], list) else []
        repeat = args_repeat[-1] if args_repeat and not isinstance(args_repeat[-1], list) else None
        return ast.CallStmt(span, str(name), tok_span(span.file, name), args, repeat)

    def repeat(self, span: Span, expr: ast.Expr) -> ast.Expr:
        return expr

    def group_stmt(self, span: Span, name: Token, *args_body: Any) -> ast.GroupStmt:
        _not_a_clause(span.file, name)
        # `name { ... }` gives (body,); `name(...) { ... }` gives (args or None, body).
        args = (args_body[0] or []) if len(args_body) == 2 else None
        return ast.GroupStmt(span, str(name), tok_span(span.file, name), args_body[-1], args)

    def anon_group(self, span: Span, body: list) -> ast.GroupStmt:
        return ast.GroupStmt(span, None, None, body)

    def residual_stmt(self, span: Span, body: list, shortcut: ast.Shortcut | None = None) -> ast.ResidualStmt:
        return ast.ResidualStmt(span, body, shortcut)

    def shortcut(self, span: Span, *name_body: Any) -> ast.Shortcut:
        name = str(name_body[0]) if len(name_body) == 2 else None
        return ast.Shortcut(name, name_body[-1], span)

    def if_stmt(self, span: Span, cond: ast.Expr, then: list, orelse: list | None = None) -> ast.IfStmt:
        return ast.IfStmt(span, cond, then, orelse)

    def else_clause(self, span: Span, body: Any) -> list[ast.Stmt]:
        return body if isinstance(body, list) else [body]

    def for_stmt(self, span: Span, var: Token, it: ast.Expr, body: list) -> ast.ForStmt:
        return ast.ForStmt(span, str(var), it, body)

    def let_stmt(self, span: Span, name: Token, value: ast.Expr) -> ast.LetStmt:
        return ast.LetStmt(span, str(name), value)

    def aux_stmt(self, span: Span, *args_body: list) -> ast.AuxStmt:
        args = args_body[0] if len(args_body) == 2 else []
        return ast.AuxStmt(span, args, args_body[-1])

    def cond_expr(self, span: Span, then: ast.Expr, cond: ast.Expr, orelse: ast.Expr) -> ast.CondExpr:
        return ast.CondExpr(span, cond, then, orelse)

    def args(self, span: Span, *args: ast.Arg) -> list[ast.Arg]:
        return list(args)

    def positional(self, span: Span, value: ast.Expr) -> ast.Arg:
        return ast.Arg(None, value, span)

    def keyword(self, span: Span, name: Token, value: ast.Expr) -> ast.Arg:
        return ast.Arg(str(name), value, span)

    # expressions
    def or_op(self, span: Span, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, "or", a, b)

    def and_op(self, span: Span, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, "and", a, b)

    def not_op(self, span: Span, a: ast.Expr) -> ast.Unary:
        return ast.Unary(span, "not", a)

    def compare(self, span: Span, a: ast.Expr, op: Token, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, str(op), a, b)

    def binary(self, span: Span, a: ast.Expr, op: Token, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, str(op), a, b)

    def pow(self, span: Span, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, "**", a, b)

    def neg(self, span: Span, _minus: Token, a: ast.Expr) -> ast.Unary:
        return ast.Unary(span, "-", a)

    def index(self, span: Span, obj: ast.Expr, idx: ast.Expr) -> ast.Index:
        return ast.Index(span, obj, idx)

    def attribute(self, span: Span, obj: ast.Expr, name: Token) -> ast.Attribute:
        return ast.Attribute(span, obj, str(name))

    def number(self, span: Span, tok: Token) -> ast.Num:
        s = str(tok)
        value: int | float
        if any(c in s for c in ".eE"):
            value = float(s)
            ok = math.isfinite(value)
        else:
            # Python refuses to convert ints of more than 4300 digits; 2^62 is the language's limit anyway.
            value = int(s) if len(s) <= 19 else 0
            ok = len(s) <= 19 and value <= MAX_INT
        if not ok:
            CURRENT.get().error(
                Diagnostic(
                    E005,
                    f"the number {s if len(s) <= 24 else s[:20] + '…'} is out of range",
                    span,
                    help=["numbers may be at most 2^62 (ints) or about 1.8e308 (floats)"],
                )
            )
            value = 0
        return ast.Num(span, value)

    def string(self, span: Span, tok: Token) -> ast.Str:
        return ast.Str(span, _string(tok))

    def true(self, span: Span) -> ast.Bool:
        return ast.Bool(span, True)

    def false(self, span: Span) -> ast.Bool:
        return ast.Bool(span, False)

    def block_input(self, span: Span) -> ast.BlockInput:
        return ast.BlockInput(span)

    def name(self, span: Span, tok: Token) -> ast.Name:
        return ast.Name(span, str(tok))

    def func_call(self, span: Span, name: Token, args: list | None = None) -> ast.FuncCall:
        return ast.FuncCall(span, str(name), args or [])

    def list(self, span: Span, *items: ast.Expr) -> ast.ListExpr:
        if len(items) > MAX_LIST_ITEMS:
            CURRENT.get().error(
                Diagnostic(
                    E610,
                    f"this list has {len(items):,} items, more than the limit of {MAX_LIST_ITEMS:,} for a written list",
                    span,
                    help=["build a long list with `range` or a comprehension, `[f(i) for i in range(n)]`"],
                )
            )
        return ast.ListExpr(span, [*items])

    def list_comp(self, span: Span, item: ast.Expr, var: Token, it: ast.Expr) -> ast.ListComp:
        return ast.ListComp(span, item, str(var), it)

    @v_args(wrapper=_parenthesised)
    def atom(self) -> None:
        """`( expr )`, the one rule with brackets that makes no node (see _parenthesised)."""


#: Clauses that continue the statement before them, and what they continue.
_CLAUSES = {"else": "if", "shortcut": "residual"}


def _not_a_clause(file: str, name: Token) -> None:
    """E002 for `else` or `shortcut` standing as a statement of its own: on the line after the
    `}` it belongs to, it would otherwise read as a group or layer named `else` that always runs."""
    owner = _CLAUSES.get(str(name))
    if owner is None:
        return
    CURRENT.get().error(
        Diagnostic(
            E002,
            f"`{name}` starts a statement here, but it only continues the `{owner}` statement before it",
            tok_span(file, name),
            help=[f"put `{name}` on the same line as the `}}` that closes the `{owner}` body: `}} {name} {{`"],
        )
    )


_BRACED = re.compile(r"\{([^{}]*)\}")


def _template_parts(tok: Token, span: Span, parse_expr: Callable[[str, str], ast.Expr]) -> list[str | ast.Expr]:
    """A string label's literal text and the expressions in its braces (`"block{s}-{i}"`), each
    expression parsed where it stands in the file; [] when the braces hold only a `{N}` of digits.

    A piece that is not an expression is reported (E218) and reads as its text.
    """
    raw = str(tok)[1:-1]
    parts: list[str | ast.Expr] = []
    literal, last, exprs = "", 0, 0
    for m in _BRACED.finditer(raw):
        piece = m.group(1)
        if piece.strip().isascii() and piece.strip().isdigit():
            continue  # the repetition's {N}: part of the literal text
        literal += raw[last : m.start()]
        parts.append(_unquote_text(literal))
        literal, last = "", m.end()
        col = (tok.column or 1) + 1 + m.start(1)
        where = Span(span.file, tok.line or 1, col, tok.line or 1, col + len(piece))
        try:
            # Padded to its column and moved to its line, so that its spans point into the file.
            expr = parse_expr(" " * (col - 1) + piece, span.file)
        except SpecError:
            CURRENT.get().error(
                Diagnostic(
                    E218,
                    f"`{{{piece}}}` in the naming template is not an expression",
                    where,
                    help=['write an expression in braces, `"block{i}"`, or one number for a repetition, `"layer{1}"`'],
                )
            )
            parts.append("{" + piece + "}")
            continue
        parts.append(_moved(expr, (tok.line or 1) - 1))
        exprs += 1
    parts.append(_unquote_text(literal + raw[last:]))
    return [p for p in parts if p != ""] if exprs else []


def _unquote_text(raw: str) -> str:
    try:
        return _unquote(f'"{raw}"')
    except (ValueError, SyntaxError):
        return raw  # the whole string's escape is reported by _string


def _moved(node: Any, lines: int) -> Any:
    """node with every span in it moved down by lines (an expression parsed on its own, line 1)."""
    if not lines:
        return node
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(n)
            continue
        for f in getattr(type(n), "__dataclass_fields__", {}):
            v = getattr(n, f)
            if isinstance(v, Span):
                setattr(n, f, v._replace(line=v.line + lines, end_line=v.end_line + lines))
            elif isinstance(v, (list, ast.Expr, ast.Arg)):
                stack.append(v)
    return node


def _string(tok: Token) -> str:
    """The value of a string literal; an unknown escape is reported (E004) and reads as ""."""
    try:
        return _unquote(tok)
    except (ValueError, SyntaxError):
        state = CURRENT.get()
        state.error(
            Diagnostic(
                E004,
                f"the string {tok} has an escape sequence the language does not know",
                tok_span(state.file, tok),
                help=['strings allow \\\\, \\", \\n and \\t; write a backslash as \\\\'],
            )
        )
        return ""


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


def _unquote(tok: Token | str) -> str:
    """The value of a string literal; ValueError for an escape other than \\\\ \\" \\n \\t.

    Decoded by hand, not with Python's literal rules, so that no Python escape
    (\\N{...}, \\x, octal) means anything in a spec.
    """
    text = str(tok)[1:-1]
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in _ESCAPES:
                raise ValueError(f"unknown escape \\{nxt}")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)
