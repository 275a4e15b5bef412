"""`cnnspec check SPEC`: validate statically and print the summary."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from cnnspec.commands.common import UsageError, add_spec_args, spec_kwargs

if TYPE_CHECKING:
    from cnnspec.analysis.pipeline import PipelinePlan
    from cnnspec.api import Checked


def register(sub: argparse._SubParsersAction) -> None:
    """Add the check subcommand."""
    p = sub.add_parser("check", help="check a spec statically and print its summary")
    add_spec_args(p)
    p.add_argument(
        "--json", action="store_true", help="print the report as one JSON object (errors and warnings as JSON too)"
    )
    add_view_args(p)
    add_pipeline_args(p)
    p.set_defaults(run=run)


#: The measures a plan balances (cnnspec.analysis.pipeline.MEASURES, which the command line does
#: not import until it plans: every command's parser is built at start-up).
BALANCES = ("macs", "params", "memory")


def add_pipeline_args(p: argparse.ArgumentParser) -> None:
    """--pipeline N and --balance: plan the network as N pipeline stages (cnnspec.analysis.pipeline)."""
    p.add_argument(
        "--pipeline",
        type=int,
        metavar="N",
        help="plan N pipeline stages: cut where exactly one tensor crosses, at every `cut` marker, balancing "
        "the largest stage (default: no plan)",
    )
    p.add_argument(
        "--balance",
        choices=BALANCES,
        help="what the plan balances: macs, params, or memory (activations at --batch) (default: macs)",
    )


def plan_for(args: argparse.Namespace, checked: Checked, batch: int = 1) -> PipelinePlan | None:
    """The plan --pipeline asks for, or None without it; a plan that cannot be made is a spec error
    (pointing at the cut marker at fault, else at the network's name)."""
    if args.pipeline is None:
        return None
    from cnnspec.analysis.pipeline import PipelineError, plan_pipeline

    try:
        return plan_pipeline(checked.graph, args.pipeline, args.balance or "macs", batch, checked.analysis)
    except PipelineError as e:
        network = checked.program.networks.get(checked.graph.network)
        raise e.spec_error(checked.program.sources, getattr(network, "name_span", None)) from None


def check_pipeline_args(args: argparse.Namespace) -> None:
    """Usage errors of --pipeline and --balance, before any work."""
    if args.pipeline is not None and args.pipeline < 1:
        raise UsageError(f"--pipeline expects a number of stages of at least 1, got {args.pipeline}")
    if args.balance is not None and args.pipeline is None:
        raise UsageError("--balance applies to a pipeline plan: give --pipeline N too")


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

    check_pipeline_args(args)
    checked = analyse(args.spec, **spec_kwargs(args))
    # Planned before anything is printed: a plan that cannot be made is an error with no summary.
    plan = plan_for(args, checked, view_kwargs(args)["batch"])
    if args.json:
        # The pydantic Report (and pydantic) only here: the table needs neither.
        from cnnspec.views.report import build_report

        report = build_report(checked.graph, checked.analysis, checked.warnings, **view_kwargs(args))
        data = report.model_dump()
        if plan is not None:
            from cnnspec.views.pipeline import plan_json
            from cnnspec.views.rows import ReportData

            labels = ReportData(checked.graph, checked.analysis, checked.warnings, **view_kwargs(args)).labels
            data["pipeline"] = plan_json(plan, checked.graph, labels)
        # Indenting needs json's pure-Python encoder, several times slower than
        # the C one: past a few thousand layers the JSON comes out compact.
        indent = 2 if len(report.layers) <= INDENT_MAX_LAYERS else None
        print(json.dumps(data, indent=indent))
    elif not args.quiet:
        from cnnspec.views.rows import ReportData
        from cnnspec.views.summary import print_report

        data_view = ReportData(checked.graph, checked.analysis, checked.warnings, **view_kwargs(args))
        print_report(data_view)
        if plan is not None:
            from cnnspec.views.pipeline import plan_lines, print_width

            print("\n".join(plan_lines(plan, checked.graph, data_view.labels, print_width())))
    return 0
