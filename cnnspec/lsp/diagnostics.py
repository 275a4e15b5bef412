"""A check's diagnostics as LSP diagnostics: code, range, severity, notes as related information."""

from __future__ import annotations

import os

from lsprotocol import types

from cnnspec.diagnostics import Diagnostic
from cnnspec.diagnostics.core import bounded
from cnnspec.lsp.check import DocCheck
from cnnspec.lsp.documents import path_to_uri, to_range
from cnnspec.syntax import ast
from cnnspec.syntax.source import Span


def to_lsp(check: DocCheck) -> list[types.Diagnostic]:
    """Every diagnostic of a check, placed in the document: one that points into another file
    (an imported one) is shown on the import that leads to it, one that points nowhere on line 1."""
    return [_one(check, d) for d in check.diagnostics]


def _one(check: DocCheck, d: Diagnostic) -> types.Diagnostic:
    message = bounded(d.message)
    if check.is_here(d.span):
        assert d.span is not None
        rng = to_range(check.lines, d.span)
    else:
        if d.span is not None:
            message = f"{d.span}: {message}"
        rng = to_range(check.lines, _import_of(check, d.span) or Span(check.name, 1, 1, 1, 1))
    related = [
        types.DiagnosticRelatedInformation(
            types.Location(_uri_of(check, n.span), _range_in(check, n.span)), bounded(n.message)
        )
        for n in d.notes
        if n.span is not None
    ]
    if d.span is not None and not check.is_here(d.span):
        # Shown on the import: the place itself, one click away.
        where = types.Location(_uri_of(check, d.span), _range_in(check, d.span))
        related.insert(0, types.DiagnosticRelatedInformation(where, f"the {d.severity} is here"))
    extra = [bounded(n.message) for n in d.notes if n.span is None]
    extra += [f"in {f.block}, instantiated as {f.path or '<network>'} at {f.span}" for f in reversed(d.trace)]
    extra += [f"help: {bounded(h)}" for h in d.help]
    if extra:
        message += "\n" + "\n".join(extra)
    return types.Diagnostic(
        range=rng,
        message=message,
        severity=types.DiagnosticSeverity.Warning if d.severity == "warning" else types.DiagnosticSeverity.Error,
        code=d.code,
        source="cnnspec",
        related_information=related or None,
    )


def _uri_of(check: DocCheck, span: Span) -> str:
    return path_to_uri(check.path if check.is_here(span) else os.path.realpath(span.file))


def _range_in(check: DocCheck, span: Span) -> types.Range:
    if check.is_here(span):
        return to_range(check.lines, span)
    # Another file: its lines from the check's sources when it was read.
    text = check.sources.texts.get(span.file)
    lines = text.split("\n") if text is not None else []
    return to_range(lines, span) if lines else types.Range(types.Position(0, 0), types.Position(0, 0))


def _import_of(check: DocCheck, span: Span | None) -> Span | None:
    """The document's import of the file a span points into (its first import when none matches)."""
    imports = [i for i in (check.module.items if check.module else []) if isinstance(i, ast.Import)]
    if span is None or not imports:
        return None
    target = os.path.realpath(span.file)
    for item in imports:
        if check.import_target(item) == target:
            return item.span
    return imports[0].span
