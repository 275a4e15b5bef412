"""Rendering of a Report: the table grouped by block with folds, then the totals and stages.

Plain text by default (pipes, files, golden tests); `format_rich` draws the
same table with rich when stdout is a terminal. rich is imported lazily: the
command line's cold start matters more than its colours.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from cnnspec.syntax.source import elide, visible
from cnnspec.views.format import human, nbytes, rf_text, shape_text

if TYPE_CHECKING:
    # Types only: the report imports this module to render itself (Report.summary), and the
    # plain summary must not import pydantic through it.
    from cnnspec.views.report import Report
    from cnnspec.views.rows import ReportData, TableRow

    #: Either has every attribute the summary reads, by the same name.
    AnyReport = Report | ReportData

HEADER = ("module", "op", "output", "params", "MACs", "RF", "act. mem")
#: Columns aligned to the right (the numbers).
RIGHT = {3, 4, 5, 6}
#: Longest module path or name shown whole; no stock name comes near (the longest is under 40).
MAX_SHOWN_PATH = 120


def shown_name(name: str) -> str:
    """A name or module path as the summary shows it: control characters drawn visibly and a
    very long one (labels are strings, up to 4,096 characters) elided to its start and length."""
    return visible(elide(name, MAX_SHOWN_PATH))


def _cells(r: TableRow) -> tuple[str, ...]:
    indent = "  " * r.level
    blank = r.kind == "open"  # an opened group's numbers are its rows'
    return (
        indent + shown_name(r.path),
        # The head's own path need not say "aux" (GoogLeNet's is "aux1", an unnamed head's layers
        # sit at the top level), so the op column says which output a row feeds.
        f"{r.op} [{r.aux}]" if r.aux else r.op,
        shape_text(r.output_shape),
        "" if blank else (f"{r.params:,}" if r.params else "-"),
        "" if blank else (human(r.macs) if r.macs else "-"),
        rf_text(r.receptive_field),
        "" if blank else (nbytes(r.activation_bytes) if r.activation_bytes else "-"),
    )


#: How the view note names what a loose fold's instances may differ in.
_VARIES = {"channels": "channel counts", "rates": "rates (dropout, stochastic depth)"}


def _view_note(report: AnyReport) -> str:
    folds = any(r.kind == "fold" for r in report.table)
    if report.depth is None and not folds:
        return ""
    how = []
    if report.depth is not None:
        how.append(f"groups opened {report.depth} level{'s' if report.depth != 1 else ''} deep")
    shown = {r.path for r in report.table if r.kind == "fold"}
    loose = {f.path: f.varies for f in report.folds if f.path in shown and not f.identical}
    if shown - set(loose):
        how.append("identical consecutive blocks folded (×N)")
    varied = {what for varies in loose.values() for what in varies}
    for v, words in _VARIES.items():
        if v in varied:
            how.append(f"consecutive blocks differing only in {words} folded (×N, {v} vary)")
    return f"({'; '.join(how)}: --depth N or --expand to open)"


def align(header: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    """A plain-text table: header, rule, rows; columns in `right` aligned right."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...]) -> str:
        cols = zip(cells, widths, strict=True)
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(cols)).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _table_lines(report: AnyReport) -> list[str]:
    return align(HEADER, [_cells(r) for r in report.table], RIGHT)


def totals_lines(report: AnyReport) -> list[str]:
    """The totals under the table: parameters, memory, MACs/FLOPs with their convention, activations."""
    b = report.batch
    aux = []
    if report.aux_outputs:
        # Aux heads hold real parameters (torchvision counts them too) but only train: say how
        # much of each total is theirs and what is left for inference.
        p, m = report.aux_params, report.aux_macs
        aux = [
            f"aux heads:     {p:,} of the parameters ({human(p)}) and {human(m)} of the MACs, training only; "
            f"without them {report.total_params - p:,} parameters, {human(report.macs - m)} MACs"
        ]
    return [
        f"parameters:    {report.total_params:,} trainable ({human(report.total_params)}), "
        f"{report.buffers:,} buffer elements",
        f"param memory:  {nbytes(report.param_bytes_fp32)} fp32, {nbytes(report.param_bytes_bf16)} bf16",
        f"MACs:          {report.macs:,} ({human(report.macs)}) per sample; FLOPs {human(report.flops)}",
        *aux,
        f"activations:   {nbytes(report.activation_bytes)} for a training step at batch {b} (--batch B)",
        f"convention:    {report.mac_convention};",
        f"               activations are {report.activation_convention}; RF = receptive field in input pixels",
    ]


def aux_lines(report: AnyReport) -> list[str]:
    """The auxiliary outputs: name, the layer whose output it is, shape, loss weight, what its head holds."""
    if not report.aux_outputs:
        return []
    header = ("aux output", "layer", "output", "weight", "layers", "params", "MACs")
    rows = [
        (shown_name(a.name), shown_name(a.node), shape_text(a.output_shape), f"{a.weight:g}", str(a.layers),
         f"{a.params:,}", human(a.macs) if a.macs else "-")
        for a in report.aux_outputs
    ]
    n = len(report.aux_outputs)
    intro = (f"auxiliary outputs ({n}; returned in training mode only, weighted in the loss; "
             "rows marked [name] are their heads):")
    return [intro, *align(header, rows, {3, 4, 5, 6})]


def stage_lines(report: AnyReport) -> list[str]:
    """The per-stage breakdown: one line per run of layers at one resolution."""
    header = ("stage", "layers", "from", "to", "output", "params", "MACs", "%MACs", "act. mem")
    total = report.macs or 1
    rows = [
        (s.resolution, str(s.layers), shown_name(s.first), shown_name(s.last), shape_text(s.output_shape),
         f"{s.params:,}", human(s.macs) if s.macs else "-", f"{100 * s.macs / total:.1f}%",
         nbytes(s.activation_bytes))
        for s in report.stages
    ]
    return align(header, rows, {1, 5, 6, 7, 8})


def format_report(report: AnyReport) -> str:
    """The table `cnnspec check` prints: grouped rows, then totals and stages, as plain text."""
    shapes = f"input {shape_text(report.input_shape)} -> output {shape_text(report.output_shape)}"
    out = [f"network {shown_name(report.network)}: {shapes}"]
    note = _view_note(report)
    if note:
        out.append(note)
    out += _table_lines(report)
    out.append("")
    out += totals_lines(report)
    if report.aux_outputs:
        out.append("")
        out += aux_lines(report)
    out.append("")
    out.append("stages (runs of layers at one resolution):")
    out += stage_lines(report)
    return "\n".join(out)


def format_rich(report: AnyReport, file: Any = None) -> None:
    """Print the report with rich: the same table with folds highlighted and nesting as indentation."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=file or sys.stdout)
    title = f"{shown_name(report.network)}: {shape_text(report.input_shape)} → {shape_text(report.output_shape)}"
    table = Table(title=title, caption=_view_note(report) or None, header_style="bold", box=None, pad_edge=False)
    for i, h in enumerate(HEADER):
        table.add_column(h, justify="right" if i in RIGHT else "left", no_wrap=True)
    for r in report.table:
        style = "bold cyan" if r.kind == "fold" else ("bold" if r.kind in ("open", "group") else None)
        if r.aux:
            style = f"{style or ''} magenta".strip()
        # escape: "[aux1]" would otherwise be read as a rich markup tag and vanish.
        table.add_row(*(escape(c) for c in _cells(r)), style=style)
    console.print(table)
    console.print()
    for line in totals_lines(report):
        console.print(line, highlight=False)
    if report.aux_outputs:
        console.print()
        for line in aux_lines(report):
            console.print(line, highlight=False, markup=False)
    console.print()
    console.print("stages (runs of layers at one resolution):")
    for line in stage_lines(report):
        console.print(line, highlight=False)


def print_report(report: AnyReport) -> None:
    """Print the summary: rich on a terminal, plain text otherwise."""
    if sys.stdout.isatty():
        format_rich(report)
    else:
        print(format_report(report))
