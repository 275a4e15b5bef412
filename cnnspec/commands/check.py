"""`cnnspec check SPEC`: validate statically and print the summary."""

from __future__ import annotations

import argparse
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cnnspec.commands.common import UsageError, add_spec_args, spec_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    """Add the check subcommand."""
    p = sub.add_parser("check", help="check a spec statically and print its summary")
    add_spec_args(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_view_args(p)
    p.set_defaults(run=run)


def add_view_args(p: argparse.ArgumentParser) -> None:
    """--depth, --expand and --batch: how much of the table to open, and the batch of the memory figure."""
    p.add_argument("--depth", type=int, metavar="N", help="open groups N levels deep (default: as many as fit 60 rows)")
    p.add_argument("--expand", action="store_true", help="open everything, every instance of a folded block included")
    p.add_argument("--batch", type=int, default=1, metavar="B", help="batch size of the activation memory (default 1)")


def view_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """build_report's keyword arguments from --depth, --expand and --batch."""
    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth expects a number of at least 0, got {args.depth}")
    if args.batch < 1:
        raise UsageError(f"--batch expects a positive batch size, got {args.batch}")
    depth = args.depth if args.depth is not None else (None if args.expand else -1)
    return {"depth": depth, "expand": args.expand, "batch": args.batch}

#: The largest report --json prints indented.
INDENT_MAX_LAYERS = 5000


def run(args: argparse.Namespace) -> int:
    """Check the spec; print its table or JSON report."""
    from cnnspec.api import analyse
    from cnnspec.views.report import build_report

    with _few_full_collections():
        checked = analyse(args.spec, **spec_kwargs(args))
        report = build_report(checked.graph, checked.analysis, checked.warnings, **view_kwargs(args))
        if args.json:
            # Indenting needs json's pure-Python encoder, several times slower than
            # the C one: past a few thousand layers the JSON comes out compact.
            indent = 2 if len(report.layers) <= INDENT_MAX_LAYERS else None
            print(json.dumps(report.model_dump(), indent=indent))
        else:
            from cnnspec.views.summary import print_report

            print_report(report)
    return 0


@contextmanager
def _few_full_collections() -> Iterator[None]:
    """Keep the garbage collector's young collections, but all but stop its full ones.

    A full collection scans every object alive, and the AST, graph and report
    of a large spec are millions of them: at the default thresholds a
    20k-layer check spent 2.8 s of 8 s in a dozen full collections. Young
    cycles are still collected; older garbage waits for the next full collection.
    """
    old = gc.get_threshold()
    gc.set_threshold(old[0], old[1], max(old[2], 1000))
    try:
        yield
    finally:
        gc.set_threshold(*old)
