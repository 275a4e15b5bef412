"""`cnnspec compile SPEC [-o FILE]`: build the GraphModule, optionally write it out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnnspec.commands.check import add_view_args, view_kwargs
from cnnspec.commands.common import UsageError, add_spec_args, set_texts, spec_kwargs, write_new

#: Output suffixes and what they hold.
FORMATS = {
    ".py": "standalone PyTorch source, a class per block",
    ".pt2": "torch.export ExportedProgram",
    ".onnx": "ONNX model through torch's exporter (eval mode, dynamic batch)",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the compile subcommand."""
    p = sub.add_parser("compile", help="compile a spec to a torch.fx GraphModule and print its summary")
    add_spec_args(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write " + "; ".join(f"{k}: {v}" for k, v in FORMATS.items()))
    p.add_argument(
        "--weights",
        metavar="RUN|FILE",
        help="load trained weights: a run directory of `cnnspec train` (its model.safetensors), a .safetensors "
        "file or a torch.save'd state_dict, checked against the spec; with -o x.py they are written beside it "
        "as x.safetensors (default: the spec's initialisation)",
    )
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--insist", action="store_true", help="compile even when the network looks too big for the memory")
    add_view_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check, build the module, load the weights, print the summary, write the output file."""
    from cnnspec.api import analyse

    out = Path(args.output) if args.output else None
    # A .py holds the architecture only: trained weights go beside it.
    beside = out.with_suffix(".safetensors") if out is not None and out.suffix == ".py" and args.weights else None
    if out is not None:
        if out.suffix not in FORMATS:
            raise UsageError(f"unknown output format {out.suffix or '(none)'!r}; use one of {', '.join(FORMATS)}")
        for path in (out, beside):
            if path is not None and path.exists() and not args.force:
                raise UsageError(f"{path} exists; pass --force to overwrite it")
    checked = analyse(args.spec, **spec_kwargs(args))
    if not args.insist:
        from cnnspec.api import ensure_fits

        ensure_fits(checked, batch=2 if out is not None and out.suffix != ".py" else 0)  # E609 before allocating
    from cnnspec.backends.fx import to_graph_module

    gm = to_graph_module(checked.graph)
    if args.weights is not None:
        from cnnspec.api import load_weights
        from cnnspec.backends.weights import WeightsError

        try:
            loaded = load_weights(gm, checked, args.spec, args.weights, set_texts(args.sets))
        except WeightsError as e:
            raise UsageError(str(e)) from None
        for message in loaded.warnings:
            print(f"cnnspec compile: warning: {message}", file=sys.stderr)
    from cnnspec.views.rows import ReportData
    from cnnspec.views.summary import print_report

    if not args.quiet:
        print_report(ReportData(checked.graph, checked.analysis, checked.warnings, **view_kwargs(args)))
    n = sum(p.numel() for p in gm.parameters())
    what = f" (weights from {loaded.path})" if args.weights is not None else ""
    print(f"compiled:    torch.fx.GraphModule {type(gm).__name__} with {n:,} parameters{what}")
    if out is not None:
        from cnnspec.backends import export

        writer = {".py": export.write_python, ".pt2": export.write_pt2, ".onnx": export.write_onnx}[out.suffix]
        try:
            write_new(out, args.force, lambda tmp: writer(gm, checked.graph, tmp))
        except export.ExportError as e:  # a network the format cannot hold (ONNX's 2 GiB)
            raise UsageError(str(e)) from None
        print(f"wrote:       {out} ({FORMATS[out.suffix]})")
        if beside is not None:
            from safetensors.torch import save_file

            state = {k: v.detach().cpu().contiguous() for k, v in gm.state_dict().items()}
            write_new(beside, args.force, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
            print(f"wrote:       {beside} (the weights: load_state_dict(safetensors.torch.load_file(...)))")
    return 0
