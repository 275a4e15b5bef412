"""Document symbols: the networks and blocks of a document, with their parameters."""

from __future__ import annotations

from lsprotocol import types

from cnnspec.lsp.check import DocCheck
from cnnspec.lsp.documents import to_range
from cnnspec.syntax import ast


def document_symbols(check: DocCheck) -> list[types.DocumentSymbol]:
    """One symbol per block and network of the document, in order."""
    out = []
    for item in check.module.items if check.module else []:
        if isinstance(item, ast.Import):
            continue
        if isinstance(item, ast.BlockDef):
            kind, detail = types.SymbolKind.Class, "block(" + ", ".join(p.name for p in item.params) + ")"
        elif isinstance(item, ast.NetworkDef):
            kind, detail = types.SymbolKind.Module, "network(" + ", ".join(p.name for p in item.params) + ")"
        else:
            kind, detail = types.SymbolKind.Module, f"network = {item.target}(…)"
        rng = to_range(check.lines, item.span)
        sel = to_range(check.lines, item.name_span)
        out.append(types.DocumentSymbol(name=item.name, kind=kind, range=rng, selection_range=sel, detail=detail))
    return out
