"""A pipeline plan as `cnnspec check --pipeline N` prints it, and as `--json` carries it.

Per stage: its first and last layers, how many, its parameters, MACs and
activation memory at the batch, and the tensor it sends to the next stage
(shape and fp32 bytes per sample); then the balance of every measure, since
they disagree (VGG-16 balances on MACs while one linear layer holds three
quarters of its parameters), and the boundaries the spec's `cut` markers pinned.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from cnnspec.analysis.pipeline import MEASURES, PipelinePlan
from cnnspec.ir import Graph
from cnnspec.views.format import human, nbytes, shape_text
from cnnspec.views.summary import PLAIN_WIDTH, Column, fitted_table, shown_name, wrap

#: The plan's table: on a narrow terminal the paths break after their dots first, then the layer
#: count, activation memory and parameters are left out, in that order.
PLAN_COLUMNS = (
    Column("stage"),
    Column("layers", right=True, drop=2),
    Column("from", wrap=1, path=True),
    Column("to", wrap=1, path=True),
    Column("params", right=True, drop=4),
    Column("MACs", right=True),
    Column("act. mem", right=True, drop=3),
)
#: The boundaries' table: what each stage sends the next.
BOUNDARY_COLUMNS = (
    Column("boundary"),
    Column("after", wrap=1, path=True),
    Column("sends"),
    Column("per sample", right=True),
    Column("fp32 at batch", right=True, drop=2),
)
#: The boundaries' table where cut markers pinned some: where each marker is.
PINNED_COLUMN = Column("pinned by", wrap=1)

#: How each measure is named in the text.
MEASURE_NAMES = {"macs": "MACs", "params": "parameters", "memory": "activation memory"}


def print_width() -> int:
    """The width the plan is printed at, as the summary above it: the terminal's, or $COLUMNS (else
    80) through a pipe."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    try:
        return max(int(os.environ.get("COLUMNS", "")), 20)
    except ValueError:
        return PLAIN_WIDTH


def _label(path: str, labels: dict[str, str]) -> str:
    return shown_name(labels.get(path, path))


def plan_rows(plan: PipelinePlan, labels: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    """One row per stage; labels: how the summary names unnamed layers ("layer4.2 (relu 3)")."""
    labels = labels or {}
    return [
        (str(s.index), str(s.layers), _label(s.first, labels), _label(s.last, labels), f"{s.params:,}",
         human(s.macs) if s.macs else "-", nbytes(s.memory))
        for s in plan.stages
    ]  # fmt: skip


def boundary_rows(plan: PipelinePlan, graph: Graph, labels: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    """One row per boundary: the stages either side, the layer it follows, the tensor it carries
    (bytes per sample and at the plan's batch, fp32) and, where markers pinned any, which marker."""
    labels = labels or {}
    at = {m.node: m.span for m in graph.cut_markers}
    rows = []
    for s, p in zip(plan.stages, plan.cuts, strict=False):
        assert s.boundary is not None
        row = (f"{s.index} → {s.index + 1}", _label(graph.nodes[p].path, labels), shape_text(s.boundary),
               nbytes(s.boundary_bytes), nbytes(s.boundary_bytes * plan.batch))  # fmt: skip
        if plan.pinned:
            span = at.get(p) if p in plan.pinned else None
            row += (f"cut at {span.file}:{span.line}:{span.col}" if span else "-",)
        rows.append(row)
    return rows


def plan_lines(
    plan: PipelinePlan, graph: Graph, labels: dict[str, str] | None = None, width: int | None = None
) -> list[str]:
    """The plan as text: a heading, the stage table fitted to width (None: whole), the balance of
    each measure and the pinned boundaries."""
    prose = width or PLAIN_WIDTH
    n = len(plan.stages)
    head = (
        f"pipeline plan: {n} stage{'s' if n != 1 else ''}, balanced on {MEASURE_NAMES[plan.balance]} "
        f"(--balance {plan.balance}); activation memory at batch {plan.batch}; "
        f"{plan.legal} legal cut point{'s' if plan.legal != 1 else ''}"
    )
    lines = ["", *wrap(head, prose)]
    table, gone = fitted_table(PLAN_COLUMNS, plan_rows(plan, labels), width)
    lines += [*(wrap(gone, prose, 1) if gone else []), *(text for _, text in table)]
    if plan.cuts:
        columns = BOUNDARY_COLUMNS + ((PINNED_COLUMN,) if plan.pinned else ())
        table, gone = fitted_table(columns, boundary_rows(plan, graph, labels), width)
        lines += ["", *(wrap(gone, prose, 1) if gone else []), *(text for _, text in table)]
    balance = ", ".join(
        f"{MEASURE_NAMES[m]} {plan.imbalance[m]:.2f}{' (balanced on)' if m == plan.balance else ''}" for m in MEASURES
    )
    lines += ["", *wrap(f"balance (largest stage over the mean; 1.00 is even): {balance}", prose, 2)]
    aux = [(s.index, a) for s in plan.stages for a in s.aux if s.index < n - 1]
    if aux:
        names = ", ".join(f"{a} (stage {k})" for k, a in aux)
        lines += wrap(f"aux outputs computed before the last stage (they leave their stage too): {names}", prose, 2)
    return lines


def plan_json(plan: PipelinePlan, graph: Graph, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The plan as `check --json` carries it under "pipeline"."""
    labels = labels or {}
    return {
        "balance": plan.balance,
        "batch": plan.batch,
        "legal_cut_points": plan.legal,
        "cuts": [
            {
                "after": graph.nodes[p].path,
                "node": p,
                "pinned": p in plan.pinned,
                "shape": list(graph.nodes[p].out_shape),
            }
            for p in plan.cuts
        ],
        "imbalance": {m: plan.imbalance[m] for m in MEASURES},
        "stages": [
            {
                "index": s.index,
                "first": s.first,
                "last": s.last,
                "first_label": labels.get(s.first, s.first),
                "last_label": labels.get(s.last, s.last),
                "layers": s.layers,
                "params": s.params,
                "buffers": s.buffers,
                "macs": s.macs,
                "activation_bytes": s.memory,
                "boundary_shape": None if s.boundary is None else list(s.boundary),
                "boundary_bytes": s.boundary_bytes,
                "aux_outputs": list(s.aux),
                "modules": list(s.paths),
            }
            for s in plan.stages
        ],
    }
