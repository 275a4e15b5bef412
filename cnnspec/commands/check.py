"""`cnnspec check SPEC`: validate statically and print the summary."""

from __future__ import annotations

import argparse
import json

from cnnspec.commands.common import add_spec_args, spec_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    """Add the check subcommand."""
    p = sub.add_parser("check", help="check a spec statically and print its summary")
    add_spec_args(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the spec; print its table or JSON report."""
    from cnnspec.api import analyse
    from cnnspec.report import build_report

    checked = analyse(args.spec, **spec_kwargs(args))
    report = build_report(checked.graph, checked.analysis, checked.warnings)
    if args.json:
        print(json.dumps(report.model_dump(), indent=2))
    else:
        print(report.summary)
    return 0
