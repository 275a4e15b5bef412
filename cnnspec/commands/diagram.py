"""`cnnspec diagram SPEC -o FILE`: draw the network with Graphviz (.svg, .png, .pdf or .dot)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnspec.commands.check import add_pipeline_args, check_pipeline_args, plan_for
from cnnspec.commands.common import UsageError, add_spec_args, spec_kwargs, write_new


def register(sub: argparse._SubParsersAction) -> None:
    """Add the diagram subcommand."""
    p = sub.add_parser("diagram", help="draw a spec as a Graphviz diagram (.svg, .png, .pdf or .dot)")
    add_spec_args(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="the file to write; its suffix picks the format: .svg, .png, .pdf or .dot",
    )
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--depth", type=int, metavar="N", help="draw groups deeper than N levels as single nodes")
    p.add_argument(
        "--expand",
        action="store_true",
        help="draw every layer: open folded repeats and do not merge norm/activation into their layer",
    )
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="top to bottom (default) or left to right")
    p.add_argument("--params", action="store_true", help="add parameters and MACs to each node")
    p.add_argument(
        "--compact",
        action="store_true",
        help="a figure for a page of a paper: smaller type and spacing, shapes in the nodes only, "
        "and the network in columns side by side (with --rankdir TB)",
    )
    p.add_argument(
        "--dpi", type=int, metavar="N", help="resolution of a .png in dots per inch (default: 110; 300 for print)"
    )
    add_pipeline_args(p)
    p.add_argument(
        "--batch", type=int, default=1, metavar="B", help="batch size of the plan's activation memory (default 1)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the spec, build its DOT text, render it with `dot` (or write the DOT text)."""
    from cnnspec.backends.diagram import FORMATS, GraphvizMissing, find_dot, render, to_dot

    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        what = repr(out.suffix) if out.suffix else "(no suffix)"
        raise UsageError(f"unknown diagram format {what} in {out}; use .svg, .png, .pdf or .dot")
    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth expects a number of at least 0, got {args.depth}")
    if args.dpi is not None:
        if suffix != ".png":
            raise UsageError(
                f"--dpi applies to .png output only; {out.name} is {suffix[1:].upper()}, which has no resolution"
            )
        if not 30 <= args.dpi <= 1200:
            raise UsageError(f"--dpi expects a number from 30 to 1200, got {args.dpi}")
    check_pipeline_args(args)
    if args.batch < 1:
        raise UsageError(f"--batch expects a positive batch size, got {args.batch}")
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    fmt = FORMATS[suffix]
    if fmt is not None:
        try:
            find_dot()  # before the work, so that a missing Graphviz is reported at once
        except GraphvizMissing as e:
            raise UsageError(str(e)) from None

    from cnnspec.api import analyse

    checked = analyse(args.spec, **spec_kwargs(args))
    plan = plan_for(args, checked, args.batch)
    diagram = to_dot(
        checked.graph,
        checked.analysis,
        depth=args.depth,
        expand=args.expand,
        rankdir=args.rankdir,
        params=args.params,
        compact=args.compact,
        plan=plan,
    )
    try:
        write_new(out, args.force, lambda tmp: render(diagram.dot, tmp, fmt, args.dpi))
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror or e}") from None
    except RuntimeError as e:
        raise UsageError(f"cannot render {out}: {e}") from None
    aux = f", {diagram.aux_outputs} aux outputs" if diagram.aux_outputs else ""
    stages = f", {diagram.stages} pipeline stages" if diagram.stages else ""
    print(
        f"wrote {out}: {diagram.nodes} nodes, {diagram.clusters} clusters, {diagram.skip_edges} skip edges{aux}{stages}"
    )
    return 0
