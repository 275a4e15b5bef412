"""Plain-text rendering of a Report: the per-layer table and the totals."""

from __future__ import annotations

from cnnspec.report import Report


def shape_text(shape: list[int]) -> str:
    """64×56×56, or a flat size."""
    return "×".join(str(d) for d in shape)


def human(n: float) -> str:
    """1.23M, 4.09G: a count with an SI suffix."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def format_report(report: Report) -> str:
    """The table `cnnspec check` prints: one row per layer, then totals."""
    header = ("module", "op", "output", "params", "MACs")
    rows = [
        (r.path, r.op, shape_text(r.output_shape), f"{r.params:,}" if r.params else "-", human(r.macs) if r.macs else "-")
        for r in report.layers
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    out = [f"network {report.network}: input {shape_text(report.input_shape)} -> output {shape_text(report.output_shape)}"]
    out.append(line(header))
    out.append("  ".join("-" * w for w in widths))
    out += [line(r) for r in rows]
    out.append("")
    out.append(f"parameters:  {report.total_params:,} ({report.trainable_params:,} trainable)")
    out.append(f"buffers:     {report.buffers:,}")
    out.append(f"MACs:        {report.macs:,} ({human(report.macs)}, conv and linear multiply-adds per sample)")
    return "\n".join(out)
