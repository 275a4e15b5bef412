"""`cnnspec layers`: the layer vocabulary with signatures."""

from __future__ import annotations

import argparse
import shutil
import textwrap


def register(sub: argparse._SubParsersAction) -> None:
    """Add the layers subcommand."""
    p = sub.add_parser("layers", help="list the built-in layers and their arguments")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print each layer kind's signature and description, fitted to the terminal (80 columns when piped)."""
    from cnnspec.layers.registry import all_kinds

    print(listing({name: (k.signature(), k.doc) for name, k in all_kinds().items()}, terminal_width()))
    print("\n[name]: optional, its default worked out from the other arguments")
    return 0


def terminal_width() -> int:
    """The terminal's width in columns; 80 for a pipe or a file (COLUMNS overrides both)."""
    return shutil.get_terminal_size((80, 24)).columns


def listing(entries: dict[str, tuple[str, str]], width: int) -> str:
    """Signatures and descriptions by name: side by side where every line fits in width, else
    each description wrapped under its signature, indented."""
    rows = [entries[name] for name in sorted(entries)]
    column = max(len(signature) for signature, _ in rows)
    if all(column + 2 + len(doc) <= width for _, doc in rows):
        return "\n".join(f"{signature.ljust(column)}  {doc}" for signature, doc in rows)
    lines = []
    for signature, doc in rows:
        lines += _wrap_signature(signature, width)
        lines += textwrap.wrap(doc, width, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)


def _wrap_signature(signature: str, width: int) -> list[str]:
    """A signature over several lines, broken after its commas only, continuation lines indented."""
    lines = [""]
    for i, part in enumerate(signature.split(", ")):
        piece = part if i == 0 else f", {part}"
        if i and len(lines[-1]) + len(piece.rstrip()) > width:
            lines[-1] += ","
            lines.append("    " + part)
        else:
            lines[-1] += piece
    return lines
