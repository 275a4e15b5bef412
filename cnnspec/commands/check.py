"""`cnnspec check SPEC`: validate statically and print the summary."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cnnspec.commands.common import UsageError, add_spec_args, spec_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    """Add the check subcommand."""
    p = sub.add_parser("check", help="check a spec statically and print its summary")
    add_spec_args(p)
    p.add_argument(
        "--json", action="store_true", help="print the report as one JSON object (errors and warnings as JSON too)"
    )
    add_view_args(p)
    p.set_defaults(run=run)


def add_view_args(p: argparse.ArgumentParser) -> None:
    """--depth, --expand and --batch: how much of the table to open, and the batch of the memory figure."""
    p.add_argument("--depth", type=int, metavar="N", help="open groups N levels deep (default: as many as fit 60 rows)")
    p.add_argument("--expand", action="store_true", help="open everything, every instance of a folded block included")
    p.add_argument("--batch", type=int, default=1, metavar="B", help="batch size of the activation memory (default 1)")


def view_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The report's keyword arguments (ReportData, build_report) from --depth, --expand and --batch."""
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

    checked = analyse(args.spec, **spec_kwargs(args))
    if args.json:
        # The pydantic Report (and pydantic) only here: the table needs neither.
        from cnnspec.views.report import build_report

        report = build_report(checked.graph, checked.analysis, checked.warnings, **view_kwargs(args))
        # Indenting needs json's pure-Python encoder, several times slower than
        # the C one: past a few thousand layers the JSON comes out compact.
        indent = 2 if len(report.layers) <= INDENT_MAX_LAYERS else None
        print(json.dumps(report.model_dump(), indent=indent))
    elif not args.quiet:
        from cnnspec.views.rows import ReportData
        from cnnspec.views.summary import print_report

        print_report(ReportData(checked.graph, checked.analysis, checked.warnings, **view_kwargs(args)))
    return 0

