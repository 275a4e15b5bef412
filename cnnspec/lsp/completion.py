"""Completion: layer kinds and block names where a statement starts, argument names inside a call's
parentheses, each with its signature."""

from __future__ import annotations

import re

from lsprotocol import types

from cnnspec.layers.kind import LayerKind, show_value
from cnnspec.layers.registry import all_kinds, lookup
from cnnspec.lsp.check import DocCheck
from cnnspec.syntax import ast

_CALLEE = re.compile(r"([A-Za-z_][A-Za-z_0-9]*)\s*$")


def _open_bracket(before: str, *, or_comma: bool = False) -> int | None:
    """The position of the innermost bracket still open at the end of before (one line); with
    or_comma, of the last comma at that bracket's level if there is one after it."""
    depth = 0
    for i in range(len(before) - 1, -1, -1):
        c = before[i]
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                return i
            depth -= 1
        elif or_comma and c == "," and depth == 0:
            return i
    return None


def open_call(before: str) -> str | None:
    """The name of the call whose parentheses are still open at the end of before (one line)."""
    i = _open_bracket(before)
    m = _CALLEE.search(before[:i]) if i is not None and before[i] == "(" else None
    return m.group(1) if m else None


_NAMED = re.compile(r"^\s*[A-Za-z_][A-Za-z_0-9]*\s*=(?!=)")


def in_value(before: str) -> bool:
    """Whether the end of before (inside a call's parentheses) is an argument's value, not its start:
    after `name =`, or after a positional argument's first word."""
    i = _open_bracket(before, or_comma=True)
    current = before[(-1 if i is None else i) + 1 :]
    return bool(_NAMED.match(current)) or bool(re.search(r"\S\s", current))


def blocks_of(check: DocCheck) -> dict[str, ast.BlockDef]:
    """The blocks visible from the document (its own when its imports did not load)."""
    if check.program is not None:
        return dict(check.program.blocks)
    items = check.module.items if check.module else []
    return {i.name: i for i in items if isinstance(i, ast.BlockDef)}


def block_signature(block: ast.BlockDef) -> str:
    """`Bottleneck(planes, stride = …)`: a block's parameters as a call writes them."""
    return f"{block.name}(" + ", ".join(p.name if p.default is None else f"{p.name} = …" for p in block.params) + ")"


def completions(check: DocCheck, line: int, col: int) -> list[types.CompletionItem]:
    """What may be written at a 1-based position of the document."""
    text = check.lines[line - 1] if 1 <= line <= len(check.lines) else ""
    before = text[: max(0, col - 1)]
    blocks = blocks_of(check)
    callee = open_call(before)
    if callee is not None and in_value(before):
        # A value: a block may be one (`unit = Bottleneck`); a layer kind or an argument name may not.
        return [
            types.CompletionItem(label=name, kind=types.CompletionItemKind.Class, detail=block_signature(b))
            for name, b in sorted(blocks.items())
        ]
    if callee is not None:
        kind = lookup(callee)
        if kind is not None:
            return [_arg_item(kind, i) for i in range(len(kind.args))]
        block = blocks.get(callee)
        if block is not None:
            sig = block_signature(block)
            return [
                types.CompletionItem(
                    label=p.name, kind=types.CompletionItemKind.Field, detail=sig, insert_text=f"{p.name} = "
                )
                for p in block.params
            ]
        return []
    items = [
        types.CompletionItem(
            label=name,
            kind=types.CompletionItemKind.Function,
            detail=kind.signature(),
            documentation=kind.doc or None,
        )
        for name, kind in sorted(all_kinds().items())
    ]
    items += [
        types.CompletionItem(label=name, kind=types.CompletionItemKind.Class, detail=block_signature(b))
        for name, b in sorted(blocks.items())
    ]
    return items


def _arg_item(kind: LayerKind, i: int) -> types.CompletionItem:
    arg = kind.args[i]
    default = "" if arg.required else " (optional)" if arg.default is None else f" = {show_value(arg.default)}"
    return types.CompletionItem(
        label=arg.name,
        kind=types.CompletionItemKind.Field,
        detail=f"{kind.signature()}",
        documentation=(arg.doc + default).strip() or None,
        insert_text=f"{arg.name} = ",
        sort_text=f"{i:03d}",
    )
