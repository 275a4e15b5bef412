"""Go to definition: a block's or network's name to its definition (here or in an imported file),
an import's string to the imported file."""

from __future__ import annotations

import os

from lsprotocol import types

from cnnspec.lsp.check import DocCheck
from cnnspec.lsp.documents import path_to_uri, to_range
from cnnspec.lsp.hover import contains, iter_statements
from cnnspec.syntax import ast
from cnnspec.syntax.source import Span


def definition(check: DocCheck, line: int, col: int) -> types.Location | None:
    """Where the name or import at a 1-based position is defined; None for anything else."""
    if check.module is None:
        return None
    for item in check.module.items:
        if isinstance(item, ast.Import) and contains(item.span, line, col):
            target = check.import_target(item)
            if target is None:
                return None
            start = types.Position(0, 0)
            return types.Location(path_to_uri(target), types.Range(start, start))
    name = _name_at(check.module, line, col)
    if name is None:
        return None
    found = _defined(check, name)
    if found is None:
        return None
    span, lines = found
    return types.Location(path_to_uri(_path_of(check, span)), to_range(lines, span))


def _name_at(module: ast.Module, line: int, col: int) -> str | None:
    """The callee or alias target at a position, or a parameter's default naming a block."""
    for s in iter_statements(module):
        if isinstance(s, ast.CallStmt) and contains(s.name_span, line, col):
            return s.name
        if isinstance(s, ast.NetworkAlias) and contains(s.target_span, line, col):
            return s.target
        args = s.args if isinstance(s, ast.CallStmt | ast.NetworkAlias) else []
        params = s.params if isinstance(s, ast.BlockDef | ast.NetworkDef) else []
        values = [a.value for a in args] + [p.default for p in params if p.default is not None]
        for v in values:
            if isinstance(v, ast.Name) and contains(v.span, line, col):
                return v.id
    return None


def _defined(check: DocCheck, name: str) -> tuple[Span, list[str]] | None:
    """The name span of name's definition, with the lines of its file."""
    if check.program is not None:
        item = check.program.blocks.get(name) or check.program.networks.get(name)
        if item is not None:
            span = item.name_span
            text = check.program.sources.texts.get(span.file, "")
            return span, text.split("\n")
    # The document did not load (an import is broken): its own definitions still lead somewhere.
    for it in check.module.items if check.module else []:
        if not isinstance(it, ast.Import) and it.name == name:
            return it.name_span, check.lines
    return None


def _path_of(check: DocCheck, span: Span) -> str:
    return check.path if check.is_here(span) else os.path.realpath(span.file)
