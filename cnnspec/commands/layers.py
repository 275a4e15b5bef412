"""`cnnspec layers`: the layer vocabulary with signatures."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the layers subcommand."""
    p = sub.add_parser("layers", help="list the built-in layers and their arguments")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per layer kind."""
    from cnnspec.layers.registry import all_kinds

    kinds = all_kinds()
    width = max(len(k.signature()) for k in kinds.values())
    for name in sorted(kinds):
        k = kinds[name]
        print(f"{k.signature().ljust(width)}  {k.doc}")
    return 0
