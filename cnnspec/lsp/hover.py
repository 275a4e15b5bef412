"""Hover: the output shape, parameters, MACs and module path of the statement under the cursor.

A layer call shows its node (each node when the line is elaborated several times: inside a block,
a repetition or a loop); a block call the totals of each instance it makes; a block's or network's
header what it amounts to. The figures come from the networks the check elaborated (check.Context).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from cnnspec.ir import Node
from cnnspec.layers.kind import shape_text
from cnnspec.layers.registry import lookup
from cnnspec.lsp.check import Context, DocCheck
from cnnspec.lsp.completion import block_signature, blocks_of
from cnnspec.syntax import ast
from cnnspec.syntax.source import Span
from cnnspec.views.format import human

#: Rows one hover lists per network before "and N more".
MAX_ROWS = 5
#: Networks one hover shows figures from.
MAX_CONTEXTS = 2
#: The head line of a block call's or a block's instances.
EACH = "{n} instance{s}, totals of each"

Statement = ast.Stmt | ast.BlockDef | ast.NetworkDef | ast.NetworkAlias


@dataclass
class Index:
    """Where a context's nodes came from: by their statement's span, and by the block call
    (a trace frame's span) whose instance holds them, each instance by its module path."""

    by_span: dict[Span, list[int]] = field(default_factory=dict)
    by_frame: dict[Span, dict[str, list[int]]] = field(default_factory=dict)


def index(context: Context) -> Index:
    """The index of one elaborated network (a few microseconds per node)."""
    out = Index()
    for node in context.graph.nodes:
        out.by_span.setdefault(node.span, []).append(node.id)
        for f in node.trace:
            out.by_frame.setdefault(f.span, {}).setdefault(f.path, []).append(node.id)
    return out


def indexes(check: DocCheck) -> list[Index]:
    """The index of every context of a check, kept on it: hover reads it on every move of the mouse."""
    if check.hover_index is None:
        check.hover_index = [index(c) for c in check.contexts]
    return check.hover_index


def children(stmt: Statement) -> list[ast.Stmt]:
    """The statements nested directly in a statement or definition."""
    if isinstance(stmt, ast.BlockDef | ast.NetworkDef | ast.GroupStmt | ast.ForStmt | ast.AuxStmt):
        return list(stmt.body)
    if isinstance(stmt, ast.ResidualStmt):
        return stmt.body + (stmt.shortcut.body if stmt.shortcut is not None else [])
    if isinstance(stmt, ast.IfStmt):
        return stmt.then + (stmt.orelse or [])
    return []


def contains(span: Span, line: int, col: int) -> bool:
    """Whether a 1-based position lies in a span (its end included: the cursor after a word)."""
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


def statement_at(module: ast.Module, line: int, col: int) -> tuple[Statement, Statement] | None:
    """The innermost statement at a position, or one starting on its line (the cursor in the
    indentation), with the definition holding it; None outside every definition."""
    for item in module.items:
        if isinstance(item, ast.Import) or not (item.span.line <= line <= item.span.end_line):
            continue
        found: Statement = item
        stmts = children(item)
        while stmts:
            inner = next((s for s in stmts if contains(s.span, line, col)), None)
            inner = inner or next((s for s in stmts if s.span.line == line), None)
            if inner is None:
                break
            found, stmts = inner, children(inner)
        return found, item
    return None


def hover_text(check: DocCheck, line: int, col: int) -> str | None:
    """The hover of a 1-based position of the checked document, as Markdown; None for nothing to say."""
    if check.module is None:
        return None
    at = statement_at(check.module, line, col)
    if at is None:
        return None
    stmt, item = at
    parts: list[str] = []
    for context, idx in list(zip(check.contexts, indexes(check), strict=True))[:MAX_CONTEXTS]:
        body = _for_context(check, context, idx, stmt, item)
        if body:
            parts.append(f"*in network `{context.network}` ({context.file})*\n```text\n{body}\n```")
    if parts:
        return "\n\n".join([_title(stmt), *parts])
    signature = _signature(check, stmt)
    if signature is None:
        return None
    # Nothing elaborated this line (a block no network uses, a family no file gives values):
    # what is called still helps.
    why = "no network elaborated here" if not check.contexts else "not elaborated in the networks checked"
    return f"{_title(stmt)}\n\n```text\n{signature}\n```\n*{why}: no shapes*"


def _signature(check: DocCheck, stmt: Statement) -> str | None:
    """The signature of the layer kind or block a call statement calls; None for anything else."""
    if not isinstance(stmt, ast.CallStmt):
        return None
    kind = lookup(stmt.name)
    if kind is not None:
        return kind.signature()
    block = blocks_of(check).get(stmt.name)
    return None if block is None else block_signature(block)


def _title(stmt: Statement) -> str:
    label = f"{stmt.label.text}: " if isinstance(stmt, ast.Stmt) and stmt.label is not None else ""
    if isinstance(stmt, ast.CallStmt):
        return f"**{label}{stmt.name}**"
    if isinstance(stmt, ast.BlockDef):
        return f"**block {stmt.name}**"
    if isinstance(stmt, ast.NetworkDef | ast.NetworkAlias):
        return f"**network {stmt.name}**"
    return f"**{label}{type(stmt).__name__.removesuffix('Stmt').lower()}**"


def _for_context(check: DocCheck, c: Context, idx: Index, stmt: Statement, item: Statement) -> str:
    if isinstance(stmt, ast.NetworkDef | ast.NetworkAlias):
        if stmt.name not in (c.network, c.definition):
            return ""
        return _totals("network", c, [n.id for n in c.graph.nodes[1:]], c.network)
    if isinstance(stmt, ast.BlockDef):
        instances = {
            path: ids
            for span, by_path in idx.by_frame.items()
            for path, ids in by_path.items()
            if _frame_block(c, ids, span) == stmt.name
        }
        return _instances(c, instances)
    nodes = idx.by_span.get(stmt.span)
    if nodes and isinstance(stmt, ast.CallStmt):
        return _layers(c, nodes)
    # A `cut` marker makes no node: say where the boundary it pins falls (once per instance).
    after = [c.graph.nodes[m.node] for m in c.graph.cut_markers if m.span == stmt.span]
    if after:
        where = ", ".join(f"{n.path} ({shape_text(n.out_shape)})" for n in after[:MAX_ROWS])
        return f"pipeline boundary after {where}{' …' if len(after) > MAX_ROWS else ''}"
    instances = idx.by_frame.get(stmt.span)
    if instances:
        return _instances(c, instances)
    # A group, join, residual, loop: every node its lines or the blocks called from them make,
    # per instance of the block that holds it (one in a network).
    inner = [
        n.id for n in c.graph.nodes if _within(n.span, stmt.span) or any(_within(f.span, stmt.span) for f in n.trace)
    ]
    if not inner:
        return ""
    what = _title(stmt).strip("*")
    if not isinstance(item, ast.BlockDef):
        return _totals(what, c, inner, c.graph.nodes[inner[0]].scope)
    by_instance: dict[str, list[int]] = {}
    for i in inner:
        by_instance.setdefault(_instance_of(c.graph.nodes[i], item.name), []).append(i)
    return _instances(c, by_instance, f"{what} in {{n}} instance{{s}} of {item.name}, totals of each")


def _instance_of(node: Node, block: str) -> str:
    """The module path of the instance of block that made a node (its innermost one)."""
    for f in reversed(node.trace):
        if f.block == block:
            return f.path
    return node.scope


def _frame_block(c: Context, ids: list[int], span: Span) -> str | None:
    for f in c.graph.nodes[ids[0]].trace:
        if f.span == span:
            return f.block
    return None


def _within(inner: Span, outer: Span) -> bool:
    return (
        inner.file == outer.file
        and (outer.line, outer.col) <= (inner.line, inner.col)
        and (
            inner.end_line,
            inner.end_col,
        )
        <= (outer.end_line, outer.end_col)
    )


def _counts(c: Context, ids: list[int]) -> tuple[int, int]:
    params = sum(p[0] for i in ids if (p := c.analysis.params[i]) is not None)
    macs = sum(m for i in ids if (m := c.analysis.macs[i]) is not None)
    return params, macs


def _in_out(nodes: list[Node]) -> str:
    first, last = nodes[0], nodes[-1]
    shape_in = shape_text(first.in_shapes[0]) if first.in_shapes else "?"
    return f"{shape_in} → {shape_text(last.out_shape) if last.out_shape else '?'}"


def _row(path: str, shapes: str, params: int, macs: int) -> list[str]:
    return [path or "<network>", shapes, f"{params:,} params", f"{human(macs)} MACs"]


def _table(rows: list[list[str]], more: int) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if more:
        lines.append(f"… and {more} more")
    return "\n".join(lines)


def _layers(c: Context, ids: list[int]) -> str:
    rows = []
    for i in ids[:MAX_ROWS]:
        node = c.graph.nodes[i]
        rows.append(_row(node.path, _in_out([node]), *_counts(c, [i])))
    head = f"{len(ids)} layers made by this line\n" if len(ids) > 1 else ""
    return head + _table(rows, len(ids) - len(rows))


def _instances(c: Context, instances: dict[str, list[int]], head: str = EACH) -> str:
    """One row per instance, in network order: its path, input and output shape, totals."""
    if not instances:
        return ""
    ordered = sorted(instances.items(), key=lambda item: min(item[1]))
    rows = []
    for path, ids in ordered[:MAX_ROWS]:
        nodes = [c.graph.nodes[i] for i in sorted(ids)]
        rows.append(_row(path, _in_out(nodes), *_counts(c, ids)))
    n = len(instances)
    head = "totals of the instance" if n == 1 and head == EACH else head.format(n=n, s="s" if n != 1 else "")
    return head + "\n" + _table(rows, n - len(rows))


def _totals(what: str, c: Context, ids: list[int], path: str) -> str:
    if not ids:
        return ""
    nodes = [c.graph.nodes[i] for i in ids]
    params, macs = _counts(c, ids)
    return f"{what}: {len(ids)} layers\n" + _table([_row(path, _in_out(nodes), params, macs)], 0)


def iter_statements(module: ast.Module) -> Iterator[Statement]:
    """Every definition and statement of a module, outer before inner."""
    stack: list[Statement] = [i for i in reversed(module.items) if not isinstance(i, ast.Import)]
    while stack:
        s = stack.pop()
        yield s
        stack.extend(reversed(children(s)))
