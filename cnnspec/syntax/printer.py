"""The canonical layout of a .cnn file: `cnnspec fmt` and the language server's formatting.

The printer works from the AST, so every expression is rewritten the one way; the source
text is read only for what the AST leaves out: comments, where blank lines were, which
statements shared a line (`a; b`), which bodies were written on one line (`{ a; b }`), and
number literals as written (`1e-5` stays `1e-5`). The rules (docs/cli.md, "fmt"):

- 4 spaces an indent; `=` and `:` with the spacing the stock specs use (`stride = 2`,
  `conv1: conv(...)`); no space inside brackets.
- Lines fit in WIDTH columns: a call's arguments, a list's items and a header's parameters
  that do not fit are filled line by line, continuation lines aligned after the bracket.
- One blank line between top-level definitions (imports and one-line network aliases may
  stand together); blank lines inside a body kept, at most one at a time.
- In a body, the labels of the statements written one to a line and one line long are
  padded to one column; so are the `init ...:` prefixes. Lines of several `;`-separated
  statements that follow each other are set as a table, each column padded.
- Comments stay where they were: a comment on a line of its own before what followed it,
  indented as that; a comment after code at its column, or two spaces after the code when
  the code now reaches it. A comment inside a statement's brackets moves to the line above
  the statement (its brackets are laid out anew).
- Parentheses are written where precedence needs them, and only there.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from cnnspec.syntax import ast
from cnnspec.syntax.parser import parse
from cnnspec.syntax.source import SourceMap, Span

#: The width lines are fitted to: the stock specs' longest lines reach 119 columns.
WIDTH = 120
INDENT = "    "

# Operator precedence, loosest first: what a child must reach to stand without parentheses.
_COND, _OR, _AND, _NOT, _CMP, _SUM, _TERM, _UNARY, _POW, _ATOM = range(1, 11)
_COMPARE = frozenset({"==", "!=", "<=", ">=", "<", ">"})
_BINARY_PREC = {"or": _OR, "and": _AND, "+": _SUM, "-": _SUM, "*": _TERM, "/": _TERM, "//": _TERM, "%": _TERM}


def format_source(text: str, file: str) -> str:
    """The canonical layout of text, a whole .cnn file; raises SpecError (with the parse
    diagnostics) when text does not parse. The result parses to the same AST, spans aside."""
    sources = SourceMap()
    module = parse(text, file, sources)
    return _Printer(text).module(module)


def quote(value: str) -> str:
    """A string literal whose value is value (the escapes the language knows)."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


@dataclass(frozen=True, slots=True)
class _Comment:
    """A `#` comment of the source: where it starts (offset, 1-based line and column), its text,
    and whether code stands before it on its line."""

    offset: int
    line: int
    col: int
    text: str
    trailing: bool


@dataclass
class _Source:
    """What the printer reads from the text: line starts, comments, and matching braces."""

    text: str
    starts: list[int] = field(default_factory=list)
    comments: list[_Comment] = field(default_factory=list)
    braces: dict[int, int] = field(default_factory=dict)  # offset of `{` -> offset of its `}`
    opens: list[int] = field(default_factory=list)  # the offsets of every `{`, in order

    def __post_init__(self) -> None:
        text = self.text
        self.starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        stack: list[int] = []
        i, n = 0, len(text)
        line, line_start, code_on_line = 1, 0, False
        while i < n:
            c = text[i]
            if c == "\n":
                line, line_start, code_on_line = line + 1, i + 1, False
            elif c == "#":
                j = text.find("\n", i)
                j = n if j < 0 else j
                self.comments.append(_Comment(i, line, i - line_start + 1, text[i:j].rstrip(), code_on_line))
                i = j
                continue
            elif c == '"':
                j = i + 1
                while j < n and text[j] not in '"\n':
                    j += 2 if text[j] == "\\" else 1
                i, code_on_line = j + 1, True
                continue
            elif c == "{":
                stack.append(i)
            elif c == "}" and stack:
                self.braces[stack.pop()] = i
            if not c.isspace() and c not in ";\\":
                code_on_line = True
            i += 1
        self.opens = sorted(self.braces)

    def offset(self, line: int, col: int) -> int:
        """The offset of a 1-based line and column."""
        return self.starts[line - 1] + col - 1

    def start(self, node: ast.Stmt | ast.Item) -> int:
        """The offset where a statement (its label included) or an item starts."""
        return self.offset(node.span.line, node.span.col)

    def end(self, node: ast.Stmt | ast.Item) -> int:
        """The offset just after a statement or an item."""
        return self.offset(node.span.end_line, node.span.end_col)

    def line_of(self, offset: int) -> int:
        """The 1-based line holding offset."""
        return bisect_right(self.starts, offset)

    def brace_after(self, offset: int) -> int:
        """The offset of the first `{` at or after offset outside comments and strings."""
        return self.opens[bisect_left(self.opens, offset)]

    def text_of(self, span: Span) -> str:
        """The source text of a span."""
        return self.text[self.offset(span.line, span.col) : self.offset(span.end_line, span.end_col)]

    def between(self, lo: int, hi: int) -> list[_Comment]:
        """The comments with lo <= offset < hi."""
        offsets = [c.offset for c in self.comments]
        return self.comments[bisect_left(offsets, lo) : bisect_left(offsets, hi)]

    def braces_in(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The outermost brace pairs that open in [lo, hi)."""
        out: list[tuple[int, int]] = []
        for o in self.opens[bisect_left(self.opens, lo) : bisect_left(self.opens, hi)]:
            if not out or o > out[-1][1]:
                out.append((o, self.braces[o]))
        return out


def _fits(col: int, text: str, tail: int) -> bool:
    return "\n" not in text and col + len(text) + tail <= WIDTH


def _last_col(col: int, text: str) -> int:
    """The column after text when it is written from col."""
    return len(text) - text.rfind("\n") - 1 if "\n" in text else col + len(text)


def _attach(line: str, comment: _Comment | None) -> str:
    """line with a trailing comment at its old column, or two spaces after the code."""
    if comment is None:
        return line
    col = max(comment.col - 1, len(line) + 2)
    return line + " " * (col - len(line)) + comment.text


#: An item of fill(): its text on one line, how to write it from a column with a tail after it
#: when that does not fit (None: it cannot be broken), and whether the source started it on a
#: new line.
_Part = tuple[str, Callable[[int, int], str] | None, bool]


class _Printer:
    """One formatting run. Every method is a function of the AST, the source and its arguments
    (comments are found by position, never consumed), so a statement's layout is computed once
    for each column it is tried at (memo) however deeply bodies nest."""

    def __init__(self, text: str) -> None:
        self.src = _Source(text)
        self.memo: dict[tuple[int, int, str, int], str] = {}

    # -------------------------------------------------------------- expressions

    def flat(self, e: ast.Expr) -> str:
        """e on one line."""
        return self.expr(e, 0, -(10**9))

    def expr(self, e: ast.Expr, col: int, tail: int) -> str:
        """e written from column col with tail columns after it on its last line; a call or a
        list too long for the width is broken inside its brackets."""
        if isinstance(e, ast.FuncCall):
            return self.fill(f"{e.func}(", self.args(e.args), ")", col, tail)
        if isinstance(e, ast.ListExpr):
            return self.fill("[", _broken_before(e.items, [self.expr_part(i) for i in e.items]), "]", col, tail)
        if isinstance(e, ast.Num):
            return self.src.text_of(e.span)
        if isinstance(e, ast.Str):
            return quote(e.value)
        if isinstance(e, ast.Bool):
            return "true" if e.value else "false"
        if isinstance(e, ast.Name):
            return e.id
        if isinstance(e, ast.BlockInput):
            return "in"
        if isinstance(e, ast.Attribute):
            return f"{self.sub(e.obj, _ATOM)}.{e.name}"
        if isinstance(e, ast.Index):
            return f"{self.sub(e.obj, _ATOM)}[{self.flat(e.index)}]"
        if isinstance(e, ast.ListComp):
            return f"[{self.flat(e.item)} for {e.var} in {self.flat(e.iter)}]"
        if isinstance(e, ast.Unary):
            if e.op == "not":
                return f"not {self.sub(e.operand, _NOT)}"
            return f"-{self.sub(e.operand, _UNARY)}"
        if isinstance(e, ast.Binary):
            if e.op == "**":
                return f"{self.sub(e.left, _ATOM)} ** {self.sub(e.right, _UNARY)}"
            if e.op in _COMPARE:
                return f"{self.sub(e.left, _SUM)} {e.op} {self.sub(e.right, _SUM)}"
            p = _BINARY_PREC[e.op]
            return f"{self.sub(e.left, p)} {e.op} {self.sub(e.right, p + 1)}"
        if isinstance(e, ast.CondExpr):
            return f"{self.sub(e.then, _OR)} if {self.sub(e.cond, _OR)} else {self.sub(e.orelse, _COND)}"
        raise TypeError(f"unknown expression {type(e).__name__}")

    def sub(self, e: ast.Expr, need: int) -> str:
        """e on one line, in parentheses when it binds looser than need."""
        text = self.flat(e)
        return f"({text})" if _prec(e) < need else text

    def expr_part(self, e: ast.Expr) -> _Part:
        """A list item or positional argument for fill."""
        return self.flat(e), lambda col, tail: self.expr(e, col, tail), False

    def arg_part(self, a: ast.Arg) -> _Part:
        """A call argument for fill: `value` or `name = value`."""
        if a.name is None:
            return self.expr_part(a.value)
        return self.named_part(a.name, a.value)

    def named_part(self, name: str, value: ast.Expr) -> _Part:
        """`name = value`: a keyword argument or a parameter's default."""
        head = f"{name} = "
        return head + self.flat(value), lambda col, tail: head + self.expr(value, col + len(head), tail), False

    def args(self, args: list[ast.Arg]) -> list[_Part]:
        """A call's arguments for fill."""
        return _broken_before(args, [self.arg_part(a) for a in args])

    def fill(self, head: str, parts: list[_Part], close: str, col: int, tail: int) -> str:
        """head, the parts separated by `, ` and close: on one line when it fits, else filled line
        by line, continuation lines starting under the first part (a part too long for a line of
        its own broken inside its brackets, the next part on a new line)."""
        one = head + ", ".join(part[0] for part in parts) + close
        if not parts or _fits(col, one, tail):
            return one
        inner = col + len(head)
        out, cur, at_start = head, inner, True
        for i, (text, broken, newline) in enumerate(parts):
            last = i == len(parts) - 1
            end = close if last else ","
            after = len(close) + tail if last else 1
            if not at_start:
                if not newline and cur + 1 + len(text) + after <= WIDTH:
                    out += " " + text + end
                    cur += 1 + len(text) + len(end)
                    continue
                out += "\n" + " " * inner
                cur = inner
            piece = text if cur + len(text) + after <= WIDTH or broken is None else broken(cur, after)
            out += piece + end
            cur = _last_col(cur, piece) + len(end)
            at_start = False
            if "\n" in piece and not last:
                out += "\n" + " " * inner
                cur, at_start = inner, True
        return out

    # -------------------------------------------------------------- statements

    @staticmethod
    def label_text(s: ast.Stmt) -> str:
        """`name:` or `"template":`."""
        assert s.label is not None
        return (quote(s.label.text) if s.label.is_template else s.label.text) + ":"

    def stmt(self, s: ast.Stmt, col: int, indent: str, pad: int = 0) -> str:
        """s (label included) written from column col inside a body indented by indent; pad is the
        column width its label (`conv1:`, or an init statement's `init conv:`) is padded to."""
        key = (id(s), col, indent, pad)
        if key not in self.memo:
            if isinstance(s, ast.InitStmt):
                text = self.init_head(s).ljust(pad) + " " + self.init_assigns(s)
            else:
                prefix = "" if s.label is None else self.label_text(s).ljust(pad) + " "
                text = prefix + self.bare(s, col + len(prefix), indent)
            self.memo[key] = text
        return self.memo[key]

    def bare(self, s: ast.Stmt, col: int, indent: str) -> str:
        """s without its label."""
        src = self.src
        start = src.start(s)
        if isinstance(s, ast.InputStmt):
            return "input: " + " x ".join(self.sub(d, _OR) for d in s.dims)
        if isinstance(s, ast.LetStmt):
            head = f"let {s.name} = "
            return head + self.expr(s.value, col + len(head), 0)
        if isinstance(s, ast.CallStmt):
            rep = f" * {self.sub(s.repeat, _UNARY)}" if s.repeat is not None else ""
            if not s.args:
                return s.name + rep
            return self.fill(f"{s.name}(", self.args(s.args), ")", col, len(rep)) + rep
        if isinstance(s, ast.GroupStmt):
            head = f"{s.name} " if s.name is not None else ""
            if s.args:  # a join's arguments: `concat(dim = -1) { ... }`
                head = self.fill(f"{s.name}(", self.args(s.args), ") ", col, 1)
            return head + self.body(s.body, src.brace_after(start), _last_col(col, head), indent)
        if isinstance(s, ast.ResidualStmt):
            brace = src.brace_after(start)
            out = "residual " + self.body(s.body, brace, col + 9, indent)
            if s.shortcut is not None:
                head = " shortcut " + (f"{s.shortcut.name} " if s.shortcut.name else "")
                cur = _last_col(col, out) + len(head)
                out += head + self.body(s.shortcut.body, src.brace_after(src.braces[brace]), cur, indent)
            return out
        if isinstance(s, ast.IfStmt):
            return self.if_stmt(s, start, col, indent)
        if isinstance(s, ast.ForStmt):
            head = f"for {s.var} in {self.flat(s.iter)} "
            return head + self.body(s.body, src.brace_after(start), col + len(head), indent)
        if isinstance(s, ast.AuxStmt):
            head = "aux "
            if s.args:
                head = self.fill("aux(", self.args(s.args), ")", col, 2) + " "
            return head + self.body(s.body, src.brace_after(start), _last_col(col, head), indent)
        raise TypeError(f"unknown statement {type(s).__name__}")

    def if_stmt(self, s: ast.IfStmt, start: int, col: int, indent: str) -> str:
        """`if c { } else { }`, `else if` kept as it was written (the AST does not tell them apart)."""
        src = self.src
        head = f"if {self.flat(s.cond)} "
        brace = src.brace_after(start)
        out = head + self.body(s.then, brace, col + len(head), indent)
        if s.orelse is None:
            return out
        close = src.braces[brace]
        after = src.text[close + 1 :].lstrip(" \t\\\r\n")
        rest = after[4:].lstrip(" \t\\\r\n")  # past `else`
        cur = _last_col(col, out) + 6
        if not rest.startswith("{") and len(s.orelse) == 1 and isinstance(s.orelse[0], ast.IfStmt):
            nested = s.orelse[0]
            return out + " else " + self.if_stmt(nested, src.start(nested), cur, indent)
        return out + " else " + self.body(s.orelse, src.brace_after(close + 1), cur, indent)

    def init_head(self, s: ast.InitStmt) -> str:
        """`init conv:` or `init conv "pattern":`."""
        pattern = f" {quote(s.pattern)}" if s.pattern is not None else ""
        return f"init {s.kind}{pattern}:"

    def init_assigns(self, s: ast.InitStmt) -> str:
        """`weight = scheme(args), bias = zeros`."""
        parts = []
        for a in s.assigns:
            args = f"({', '.join(self.arg_part(x)[0] for x in a.args)})" if a.args else ""
            parts.append(f"{a.target} = {a.scheme}{args}")
        return ", ".join(parts)

    # -------------------------------------------------------------------- bodies

    def body(self, stmts: list[ast.Stmt], brace: int, col: int, indent: str) -> str:
        """A body whose `{` is at offset brace in the source, written from column col, its
        statements indented one step past indent: `{ a; b }` when it was written on one line
        and still fits, else one statement (or `;` row) a line."""
        src = self.src
        close = src.braces[brace]
        if src.line_of(brace) == src.line_of(close):
            if not stmts:
                return "{}"
            one = "{ " + "; ".join(self.stmt(s, 0, indent) for s in stmts) + " }"
            if _fits(col, one, 0):
                return one
        first = src.start(stmts[0]) if stmts else close
        head = next((c for c in src.between(brace, first) if c.line == src.line_of(brace)), None)
        opening = _attach(" " * col + "{", head)[col:]
        lo = head.offset + 1 if head is not None else brace + 1
        return "\n".join([opening, *self.block_lines(stmts, lo, close, indent + INDENT), indent + "}"])

    def block_lines(self, stmts: list[ast.Stmt], lo: int, hi: int, inner: str) -> list[str]:
        """The lines of a body's statements and comments, which lie between offsets lo and hi."""
        src = self.src
        col = len(inner)
        rows: list[list[ast.Stmt]] = []
        for s in stmts:
            if rows and s.span.line == rows[-1][-1].span.end_line:
                rows[-1].append(s)
            else:
                rows.append([s])
        # A row of `;` statements that cannot stand on one line becomes one statement a line.
        split: list[list[ast.Stmt]] = []
        for row in rows:
            cells = [self.stmt(s, col, inner) for s in row]
            if len(row) > 1 and (any("\n" in c for c in cells) or col + len("; ".join(cells)) > WIDTH):
                split.extend([s] for s in row)
            else:
                split.append(row)
        aligned = self.aligned(split, col, inner)
        lines: list[str] = []
        table: list[tuple[list[str], _Comment | None]] = []
        prev_line = src.line_of(lo)

        def flush() -> None:
            # Consecutive `;` rows as a table: each column as wide as its widest cell, then `;  `.
            if not table:
                return
            if len(table) == 1:
                cells, comment = table.pop()
                lines.append(_attach(inner + "; ".join(cells), comment))
                return
            ncols = max(len(cells) for cells, _ in table)
            widths = [max((len(c[k]) for c, _ in table if len(c) > k + 1), default=0) for k in range(ncols)]
            for cells, comment in table:
                text = "".join((cell + ";").ljust(widths[k] + 1) + "  " for k, cell in enumerate(cells[:-1]))
                lines.append(_attach(inner + text + cells[-1], comment))
            table.clear()

        def comment_lines(comments: list[_Comment]) -> None:
            nonlocal prev_line
            for c in comments:
                if c.trailing and lines and not table:
                    lines[-1] = _attach(lines[-1], c)  # after code already written: it stays on its line
                    continue
                flush()
                if c.line > prev_line + 1 and lines:
                    lines.append("")
                lines.append(inner + c.text)
                prev_line = c.line

        for i, row in enumerate(split):
            start, end = src.start(row[0]), src.end(row[-1])
            comment_lines(src.between(lo, start))
            if row[0].span.line > prev_line + 1 and (lines or table):
                flush()
                lines.append("")
            inside = [
                c for c in src.between(start, end) if not any(a < c.offset < b for a, b in src.braces_in(start, end))
            ]
            if inside:
                flush()
                lines.extend(inner + c.text for c in inside)
            nxt = src.start(split[i + 1][0]) if i + 1 < len(split) else hi
            trailing = next((c for c in src.between(end, nxt) if c.line == row[-1].span.end_line), None)
            if len(row) > 1:
                pad = aligned.get(id(row[0]), 0)
                table.append(([self.stmt(s, col, inner, pad if k == 0 else 0) for k, s in enumerate(row)], trailing))
            else:
                flush()
                lines.append(_attach(inner + self.stmt(row[0], col, inner, aligned.get(id(row[0]), 0)), trailing))
            prev_line = row[-1].span.end_line
            lo = trailing.offset + 1 if trailing is not None else end
        flush()
        comment_lines(src.between(lo, hi))
        return lines

    def aligned(self, rows: list[list[ast.Stmt]], col: int, inner: str) -> dict[int, int]:
        """The padded width of the labels of a body's statements that start a line and are one
        line long (and of its init statements' `init kind:`), by id. A statement that would no longer
        fit on one line with its label padded keeps its label as it is."""
        out: dict[int, int] = {}
        solo = [row[0] for row in rows if len(row) == 1]
        inits = [s for s in solo if isinstance(s, ast.InitStmt)]
        width = max((len(self.init_head(s)) for s in inits), default=0)
        out.update((id(s), width) for s in inits)
        # A row's first statement starts its line too; what follows it on the row is its tail.
        tails = {
            id(row[0]): (len("; ".join(self.stmt(s, col, inner) for s in row[1:])) + 2 if len(row) > 1 else 0)
            for row in rows
        }
        cands = [
            row[0]
            for row in rows
            if row[0].label is not None
            and not isinstance(row[0], ast.InitStmt)
            and "\n" not in self.stmt(row[0], col, inner)
        ]
        while cands:
            width = max(len(self.label_text(s)) for s in cands)
            bad = []
            for s in cands:
                text, plain = self.stmt(s, col, inner, width), self.stmt(s, col, inner)
                if "\n" in text or (col + len(text) + tails[id(s)] > WIDTH and len(text) > len(plain)):
                    bad.append(s)
            if not bad:
                break
            cands = [s for s in cands if s not in bad]
        out.update((id(s), max(len(self.label_text(t)) for t in cands)) for s in cands)
        return out

    # --------------------------------------------------------------------- items

    def module(self, m: ast.Module) -> str:
        """The whole file."""
        src = self.src
        lines: list[str] = []
        prev_line = 0
        prev_item: ast.Item | None = None
        lo = 0
        for i, item in enumerate(m.items):
            start, end = src.start(item), src.end(item)
            before = src.between(lo, start)
            # The comments right above the item (no blank line between) go with it.
            k, top = len(before), item.span.line
            while k and before[k - 1].line == top - 1 and not before[k - 1].trailing:
                k, top = k - 1, before[k - 1].line
            for c in before[:k]:
                if c.trailing and lines:
                    lines[-1] = _attach(lines[-1], c)
                    continue
                if lines and (c.line > prev_line + 1 or (prev_item is not None and _is_def(prev_item))):
                    lines.append("")
                lines.append(c.text)
                prev_line, prev_item = c.line, None
            if lines and (top > prev_line + 1 or (prev_item is not None and (_is_def(prev_item) or _is_def(item)))):
                lines.append("")
            lines.extend(c.text for c in before[k:])
            skip = self.item_braces(item, start)
            lines.extend(c.text for c in src.between(start, end) if not any(a < c.offset < b for a, b in skip))
            nxt = src.start(m.items[i + 1]) if i + 1 < len(m.items) else len(src.text)
            trailing = next((c for c in src.between(end, nxt) if c.line == item.span.end_line), None)
            text = self.item(item, start).split("\n")
            lines.extend(text[:-1])
            lines.append(_attach(text[-1], trailing))
            prev_line, prev_item = item.span.end_line, item
            lo = trailing.offset + 1 if trailing is not None else end
        for c in src.between(lo, len(src.text)):
            if c.trailing and lines:
                lines[-1] = _attach(lines[-1], c)
                continue
            if lines and c.line > prev_line + 1:
                lines.append("")
            lines.append(c.text)
            prev_line = c.line
        return "\n".join(lines) + "\n" if lines else ""

    def item_braces(self, item: ast.Item, start: int) -> list[tuple[int, int]]:
        """The braces of an item's body (its comments are the body's)."""
        if isinstance(item, (ast.BlockDef, ast.NetworkDef)):
            brace = self.src.brace_after(start)
            return [(brace, self.src.braces[brace])]
        return []

    def item(self, item: ast.Item, start: int) -> str:
        """An import, a network alias, or a block or network with its body."""
        if isinstance(item, ast.Import):
            return f"import {quote(item.path)}"
        if isinstance(item, ast.NetworkAlias):
            head = f"network {item.name} = "
            return head + self.fill(f"{item.target}(", self.args(item.args), ")", len(head), 0)
        kw = "block" if isinstance(item, ast.BlockDef) else "network"
        parts: list[_Part] = [
            (p.name, None, False) if p.default is None else self.named_part(p.name, p.default) for p in item.params
        ]
        parts = _broken_before(item.params, parts)
        if parts or isinstance(item, ast.BlockDef):
            head = self.fill(f"{kw} {item.name}(", parts, ")", 0, 2) + " "
        else:
            head = f"{kw} {item.name} "
        return head + self.body(item.body, self.src.brace_after(start), _last_col(0, head), "")


def _broken_before(nodes: list, parts: list[_Part]) -> list[_Part]:
    """parts, each marked with whether its node started a new source line after the one before:
    where a list that does not fit on one line was broken by hand, it is broken there again."""
    out = parts[:1]
    for prev, node, (text, broken, _) in zip(nodes[:-1], nodes[1:], parts[1:], strict=True):
        out.append((text, broken, node.span.line > prev.span.end_line))
    return out


def _is_def(item: ast.Item) -> bool:
    """Whether a top-level item is a definition with a body (set off by blank lines)."""
    return isinstance(item, (ast.BlockDef, ast.NetworkDef))


def _prec(e: ast.Expr) -> int:
    """How tightly e binds (see the _COND .. _ATOM levels)."""
    if isinstance(e, ast.CondExpr):
        return _COND
    if isinstance(e, ast.Binary):
        if e.op in _COMPARE:
            return _CMP
        if e.op == "**":
            return _POW
        return _BINARY_PREC[e.op]
    if isinstance(e, ast.Unary):
        return _NOT if e.op == "not" else _UNARY
    return _ATOM
