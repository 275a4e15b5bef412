"""Rendering of a Report: the table grouped by block with folds, then the totals and stages.

Plain text, fitted to a width (`fit`: names wrap, the least needed columns
are left out, no number is cut); `format_rich` prints the same text styled
with rich when stdout is a terminal. rich is imported lazily: the command
line's cold start matters more than its colours.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a summary table: its header, and how it gives way where a terminal is narrow.

    drop and wrap are steps of one order (1 first, 0 never): at its drop step the column is
    left out, at its wrap step its text may break onto more lines, a name at its spaces, a
    module path after its dots. A number never wraps and is never cut.
    """

    header: str
    #: Aligned right (the numbers).
    right: bool = False
    drop: int = 0
    wrap: int = 0
    #: Whether the cells are module paths, which break after a dot rather than at spaces only.
    path: bool = False


#: The main table. On a narrow terminal the op column wraps first, then activation memory and the
#: receptive field are left out, then module paths break after their dots, and only then are the
#: MACs left out: parameters, shapes and MACs are what a summary is read for, and the totals
#: under the table give the rest.
COLUMNS = (
    Column("module", wrap=4, path=True),
    Column("op", wrap=1),
    Column("output"),
    Column("params", right=True),
    Column("MACs", right=True, drop=5),
    Column("RF", right=True, drop=3),
    Column("act. mem", right=True, drop=2),
)
#: The stages table, read for where the compute lies: its memory, layer counts and shapes give way
#: first, then its paths wrap, and its MACs stay.
STAGE_COLUMNS = (
    Column("stage"),
    Column("layers", right=True, drop=2),
    Column("from", wrap=4, path=True),
    Column("to", wrap=4, path=True),
    Column("output", drop=3),
    Column("params", right=True, drop=5),
    Column("MACs", right=True),
    Column("%MACs", right=True, drop=6),
    Column("act. mem", right=True, drop=1),
)
#: The aux outputs' table: the head's layer count and loss weight give way first.
AUX_COLUMNS = (
    Column("aux output", wrap=5, path=True),
    Column("layer", wrap=5, path=True),
    Column("output", drop=4),
    Column("weight", right=True, drop=2),
    Column("layers", right=True, drop=1),
    Column("params", right=True),
    Column("MACs", right=True, drop=3),
)
#: Where the values of the totals begin ("parameters:    ..."): wrapped lines are indented to it.
VALUE_COLUMN = 15
#: The width the prose around the tables wraps at where no terminal says otherwise (a pipe, a file).
PLAIN_WIDTH = 80
#: The narrowest a wrapped name column goes, its words broken, on a terminal too narrow for them.
MIN_FOLD = 8
#: Longest module path or name shown whole; no stock name comes near (the longest is under 40).
MAX_SHOWN_PATH = 120


def shown_name(name: str) -> str:
    """A name or module path as the summary shows it: control characters drawn visibly and a
    very long one (labels are strings, up to 4,096 characters) elided to its start and length."""
    return visible(elide(name, MAX_SHOWN_PATH))


def subtotal(text: str) -> str:
    """An opened group's figure, set apart from the rows it sums: (2,438,400)."""
    return f"({text})"


def _is_subtotal(cell: str) -> bool:
    return cell.startswith("(") and cell.endswith(")")


def _cells(r: TableRow) -> tuple[str, ...]:
    indent = "  " * r.level
    # An opened group's own figures are its rows'; its header shows their sums, in parentheses.
    opened = r.kind == "open"
    p, m, a = (r.subtotal_params, r.subtotal_macs, r.subtotal_activation_bytes) if opened else (
        r.params, r.macs, r.activation_bytes)
    cells = (f"{p:,}" if p else "-", human(m) if m else "-", nbytes(a) if a else "-")
    if opened:
        cells = tuple(subtotal(c) for c in cells)
    return (
        indent + shown_name(r.label or r.path),
        # The head's own path need not say "aux" (GoogLeNet's is "aux1", an unnamed head's layers
        # sit at the top level), so the op column says which output a row feeds.
        f"{r.op} [{r.aux}]" if r.aux else r.op,
        shape_text(r.output_shape),
        cells[0],
        cells[1],
        rf_text(r.receptive_field),
        cells[2],
    )


#: How the view note names what a loose fold's instances may differ in (another word of Arg.varies: itself).
_VARIES = {
    "channels": "channel counts",
    "rates": "rates (dropout, stochastic depth)",
    "shifts": "shifts (window attention)",
}


def _view_note(report: AnyReport) -> str:
    folds = any(r.kind == "fold" for r in report.table)
    how = []
    if report.depth is not None:
        how.append(f"groups opened {report.depth} level{'s' if report.depth != 1 else ''} deep")
    shown = {r.path for r in report.table if r.kind == "fold"}
    loose = {f.path: f.varies for f in report.folds if f.path in shown and not f.identical}
    if shown - set(loose):
        how.append("identical consecutive blocks folded (×N)")
    varied = {what for varies in loose.values() for what in varies}
    for v in sorted(varied, key=lambda what: (what != "channels", what)):
        how.append(f"consecutive blocks differing only in {_VARIES.get(v, v)} folded (×N, {v} vary)")
    if report.depth is None and not folds:
        return ""
    return f"({'; '.join(how)}: --depth N or --expand to open)"


def wrap(text: str, width: int, indent: int = 0, first: str = "") -> list[str]:
    """text wrapped at spaces to width, after `first` on the first line and `indent` spaces on
    the others; a word longer than a line (a number, a path) is never cut."""
    return textwrap.wrap(
        text, max(width, indent + 20), initial_indent=first, subsequent_indent=" " * indent,
        break_long_words=False, break_on_hyphens=False,
    ) or [first.rstrip()]


def field(label: str, value: str, width: int) -> list[str]:
    """A line of the totals, "parameters:    ...", wrapped with its value column kept."""
    return wrap(value, width, VALUE_COLUMN, f"{label:<{VALUE_COLUMN}}" if label else " " * VALUE_COLUMN)


def _hang(header: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int]) -> tuple[
        tuple[str, ...], list[tuple[str, ...]]]:
    """Make room for a subtotal's closing parenthesis: in a column that has one, the other cells
    end a space early, so that the digits line up."""
    hung = {i for i in right if any(_is_subtotal(row[i]) for row in rows)}
    if not hung:
        return header, rows

    def pad(cells: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c + " " if i in hung and not _is_subtotal(c) else c for i, c in enumerate(cells))

    return pad(header), [pad(row) for row in rows]


def _pieces(cell: str, path: bool) -> list[str]:
    """Where a cell may break: after each space, and after each dot of a path, but not inside
    parentheses, so that an unnamed layer's "(relu 3)" stays whole."""
    return [x for x in re.split(r"(?<=[ .])(?![^(]*\))" if path else r"(?<= )", cell) if x]


def _least(cell: str, path: bool) -> int:
    """The narrowest a wrapped cell can go: its longest piece, after its indentation (a path's
    continuation lines are indented one more than its first: see wrap_cell)."""
    indent = len(cell) - len(cell.lstrip(" "))
    pieces = _pieces(cell.lstrip(" "), path)
    return max((indent + (1 if k and path else 0) + len(x.rstrip()) for k, x in enumerate(pieces)), default=0)


def wrap_cell(cell: str, width: int, path: bool) -> str:
    """A cell broken onto lines of at most width (where its pieces allow), each line after the
    first indented one more than the cell, so that it reads as the same row, not a nested one."""
    if len(cell) <= width:
        return cell
    indent = " " * (len(cell) - len(cell.lstrip(" ")))
    lines = [indent]
    for piece in _pieces(cell.lstrip(" "), path):
        if len((lines[-1] + piece).rstrip()) > width and lines[-1].strip():
            lines.append(indent + " ")
        lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines)


def _lines(rows: list[tuple[str, ...]], i: int, width: int, path: bool) -> int:
    """How many lines column i's cells take at width: paths broken as wrap_cell does, other
    text at its spaces (and inside a word too long for a line) as _cell_lines does."""
    if path:
        return sum(wrap_cell(row[i], width, True).count("\n") + 1 for row in rows)
    return sum(len(textwrap.wrap(row[i], width, break_on_hyphens=False)) or 1 for row in rows)


def fit(columns: tuple[Column, ...], rows: list[tuple[str, ...]], width: int) -> tuple[list[int], list[int]] | None:
    """Which columns a table `width` characters wide keeps, and each one's width; None: even the
    columns never left out, their text wrapped, do not fit.

    Columns are two spaces apart. A table that fits whole is shown whole; otherwise the
    columns give way in their order (Column.drop, Column.wrap) until the rest fits, and
    whatever room is left goes back to the wrapped columns. A kept number column is as wide
    as its widest cell, so no number is ever cut.
    """
    natural = [max(len(c.header), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    widths = list(natural)
    kept = list(range(len(columns)))
    steps = sorted(
        [(c.drop, 0, i) for i, c in enumerate(columns) if c.drop]
        + [(c.wrap, 1, i) for i, c in enumerate(columns) if c.wrap]
    )

    def need() -> int:
        return sum(widths[i] for i in kept) + 2 * (len(kept) - 1)

    wrapped = []
    for _, wraps, i in steps:
        if need() <= width:
            break
        if wraps:
            c = columns[i]
            widths[i] = max(len(c.header), *(_least(row[i], c.path) for row in rows))
            wrapped.append(i)
        else:
            kept.remove(i)
            wrapped = [j for j in wrapped if j != i]
    if need() > width:
        # Last, a name longer than the room left breaks inside its words; a path still only
        # after a dot.
        for i in kept:
            c = columns[i]
            if c.wrap and not c.path:
                widths[i] = min(widths[i], max(len(c.header), MIN_FOLD))
        if need() > width:
            return None
    # Give the room left back to the wrapped columns where it saves the most lines per character.
    spare = width - need()
    while spare > 0:
        best: tuple[float, int, int] | None = None
        for i in wrapped:
            now = _lines(rows, i, widths[i], columns[i].path)
            for w in range(widths[i] + 1, min(natural[i], widths[i] + spare) + 1):
                fewer = now - _lines(rows, i, w, columns[i].path)
                if fewer > 0:
                    if best is None or fewer / (w - widths[i]) > best[0]:
                        best = (fewer / (w - widths[i]), i, w)
                    break
        if best is None:
            break
        _, i, w = best
        spare -= w - widths[i]
        widths[i] = w
    return kept, [widths[i] for i in kept]


def _left_out(columns: tuple[Column, ...], kept: list[int], width: int) -> str:
    gone = [c.header for i, c in enumerate(columns) if i not in kept]
    if not gone:
        return ""
    return f"(left out to fit {width} columns: {', '.join(gone)}; a wider terminal or --json shows them)"


def _cell_lines(cell: str, width: int, column: Column) -> list[str]:
    """A cell's lines in a column width wide: paths broken after their dots (wrap_cell), other
    names at their spaces, and inside a word only where it is longer than the column (fit's
    last resort). A number is never broken: fit makes its column as wide as its widest cell."""
    if len(cell) <= width or not column.wrap:
        return [cell]
    if column.path:
        return wrap_cell(cell, width, True).split("\n")
    return textwrap.wrap(cell, width, break_on_hyphens=False) or [""]


def fitted_table(
    columns: tuple[Column, ...], rows: list[tuple[str, ...]], width: int | None
) -> tuple[list[tuple[int, str]], str]:
    """A plain-text table fitted to width (None: every column whole): header, rule, rows.

    Returns its lines, each with the index of the row it belongs to (-1: the header or the
    rule), and the note saying which columns were left out ("" where none). Where even the
    columns never left out do not fit, the table is shown whole: a line too long for the
    terminal wraps there, but no number is cut.
    """
    right = {i for i, c in enumerate(columns) if c.right}
    header, rows = _hang(tuple(c.header for c in columns), rows, right)
    table = [header, *rows]
    fitted = fit(columns, table, width) if width is not None else None
    if fitted is None:
        kept = list(range(len(columns)))
        widths = [max(len(row[i]) for row in table) for i in kept]
    else:
        kept, widths = fitted
    lines: list[tuple[int, str]] = []
    for n, row in enumerate(table):
        cells = [_cell_lines(row[i], w, columns[i]) for i, w in zip(kept, widths, strict=True)]
        for k in range(max(map(len, cells))):
            parts = []
            for i, w, cell in zip(kept, widths, cells, strict=True):
                text = cell[k] if k < len(cell) else ""
                parts.append(text.rjust(w) if i in right else text.ljust(w))
            lines.append((n - 1, "  ".join(parts).rstrip()))
        if n == 0:
            lines.append((-1, "  ".join("-" * w for w in widths)))
    return lines, _left_out(columns, kept, width) if fitted is not None else ""


def _table(columns: tuple[Column, ...], rows: list[tuple[str, ...]], width: int | None) -> list[str]:
    """fitted_table's lines, the note on what was left out first."""
    lines, note = fitted_table(columns, rows, width)
    return [*(wrap(note, width or PLAIN_WIDTH, 1) if note else []), *(line for _, line in lines)]


def _table_rows(report: AnyReport) -> list[tuple[str, ...]]:
    return [_cells(r) for r in report.table]


def totals_lines(report: AnyReport, width: int = PLAIN_WIDTH) -> list[str]:
    """The totals under the table: parameters, memory, MACs/FLOPs with their convention, activations,
    wrapped to width with the values' column kept."""
    b = report.batch
    lines = [
        *field("parameters:", f"{report.total_params:,} trainable ({human(report.total_params)}), "
               f"{report.buffers:,} buffer elements", width),
        *field("param memory:", f"{nbytes(report.param_bytes_fp32)} fp32, {nbytes(report.param_bytes_bf16)} bf16",
               width),
        *field("MACs:", f"{report.macs:,} ({human(report.macs)}) per sample; FLOPs {human(report.flops)}", width),
    ]
    if report.aux_outputs:
        # Aux heads hold real parameters (torchvision counts them too) but only train: say how
        # much of each total is theirs and what is left for inference.
        p, m = report.aux_params, report.aux_macs
        lines += field(
            "aux heads:",
            f"{p:,} of the parameters ({human(p)}) and {human(m)} of the MACs, training only; "
            f"without them {report.total_params - p:,} parameters, {human(report.macs - m)} MACs",
            width,
        )
    return [
        *lines,
        *field("activations:", f"{nbytes(report.activation_bytes)} for a training step at batch {b} (--batch B)",
               width),
        *field("convention:", f"{report.mac_convention};", width),
        *field("", f"activations are {report.activation_convention}; RF = receptive field in input pixels", width),
    ]


def _aux_intro(report: AnyReport, width: int) -> list[str]:
    n = len(report.aux_outputs)
    return wrap(
        f"auxiliary outputs ({n}; returned in training mode only, weighted in the loss; "
        "rows marked [name] are their heads):", width, 2,
    )


def _aux_rows(report: AnyReport) -> list[tuple[str, ...]]:
    return [
        (shown_name(a.name), shown_name(a.node_label or a.node), shape_text(a.output_shape), f"{a.weight:g}",
         str(a.layers), f"{a.params:,}", human(a.macs) if a.macs else "-")
        for a in report.aux_outputs
    ]


def aux_lines(report: AnyReport, width: int | None = None) -> list[str]:
    """The auxiliary outputs: name, the layer whose output it is, shape, loss weight, what its head holds."""
    if not report.aux_outputs:
        return []
    return [*_aux_intro(report, width or PLAIN_WIDTH), *_table(AUX_COLUMNS, _aux_rows(report), width)]


def _stage_rows(report: AnyReport) -> list[tuple[str, ...]]:
    total = report.macs or 1
    return [
        (s.resolution, str(s.layers), shown_name(s.first_label or s.first), shown_name(s.last_label or s.last),
         shape_text(s.output_shape), f"{s.params:,}", human(s.macs) if s.macs else "-",
         f"{100 * s.macs / total:.1f}%", nbytes(s.activation_bytes))
        for s in report.stages
    ]


def stage_lines(report: AnyReport, width: int | None = None) -> list[str]:
    """The per-stage breakdown: one line per run of layers at one resolution."""
    return _table(STAGE_COLUMNS, _stage_rows(report), width)


def _sections(report: AnyReport, width: int | None) -> list[tuple[str, list[str], list[tuple[int, str]]]]:
    """The summary in order, as (what, prose lines, table lines): what is "main", "totals", "aux"
    or "stages"; a table's lines carry their row's index (fitted_table)."""
    prose = width or PLAIN_WIDTH
    shapes = f"input {shape_text(report.input_shape)} -> output {shape_text(report.output_shape)}"
    head = wrap(f"network {shown_name(report.network)}: {shapes}", prose, 2)
    note = _view_note(report)
    if note:
        head += wrap(note, prose, 1)
    main, gone = fitted_table(COLUMNS, _table_rows(report), width)
    if gone:
        head += wrap(gone, prose, 1)
    sections = [("main", head, main), ("totals", ["", *totals_lines(report, prose)], [])]
    if report.aux_outputs:
        aux, gone = fitted_table(AUX_COLUMNS, _aux_rows(report), width)
        intro = ["", *_aux_intro(report, prose), *(wrap(gone, prose, 1) if gone else [])]
        sections.append(("aux", intro, aux))
    stages, gone = fitted_table(STAGE_COLUMNS, _stage_rows(report), width)
    intro = ["", "stages (runs of layers at one resolution):", *(wrap(gone, prose, 1) if gone else [])]
    sections.append(("stages", intro, stages))
    return sections


def format_report(report: AnyReport, width: int | None = None) -> str:
    """The summary `cnnspec check` prints: grouped rows, then totals and stages, as plain text
    width characters wide.

    Where the tables are wider, their names wrap and their least needed columns are left out,
    as a note over each table says; a number is never cut. width None keeps every column of
    every table (Report.summary, the gallery, the golden files) and wraps the prose at 80.
    """
    return "\n".join(line for _, prose, table in _sections(report, width) for line in (
        *prose, *(text for _, text in table)))


def _row_styles(report: AnyReport) -> list[str | None]:
    styles: list[str | None] = []
    for r in report.table:
        style = "bold cyan" if r.kind == "fold" else ("bold" if r.kind in ("open", "group") else None)
        if r.aux:
            style = f"{style or ''} magenta".strip()
        styles.append(style)
    return styles


#: A subtotal in an opened group's row: "(2,438,400)", "(1.90G)", "(40.63 MiB)".
_SUBTOTAL = re.compile(r"\(\d[\d,.]*(?: ?[A-Za-z]+)?\)")


def format_rich(report: AnyReport, file: Any = None, width: int | None = None) -> None:
    """Print the summary with rich: format_report's text at the console's width (or width), its
    folds highlighted, its groups bold and an opened group's subtotals dim."""
    from rich.console import Console
    from rich.text import Text

    console = Console(file=file or sys.stdout, width=width)
    styles = _row_styles(report)
    for what, prose, table in _sections(report, console.width):
        for line in prose:
            console.print(Text(line), soft_wrap=True)
        for n, line in table:
            text = Text(line, style="bold" if n == -1 and not line.startswith("-") else "")
            if what == "main" and n >= 0:
                text.stylize(styles[n] or "")
                if report.table[n].kind == "open":
                    for m in _SUBTOTAL.finditer(line):
                        text.stylize("dim", *m.span())
            # soft_wrap: the line is already fitted; rich must neither wrap nor crop it.
            console.print(text, soft_wrap=True)


def _pipe_width() -> int:
    """The width of piped output: $COLUMNS where it is set to a number, else PLAIN_WIDTH."""
    try:
        return max(int(os.environ.get("COLUMNS", "")), 20)
    except ValueError:
        return PLAIN_WIDTH


def print_report(report: AnyReport) -> None:
    """Print the summary: with rich on a terminal (fitted to it), plain text fitted to $COLUMNS or
    80 columns through a pipe."""
    if sys.stdout.isatty():
        format_rich(report)
    else:
        print(format_report(report, _pipe_width()))
