"""The report of a checked network: the data behind `check`'s table and `--json`."""

from __future__ import annotations

from pydantic import BaseModel

from cnnspec.diagnostics import Diagnostic
from cnnspec.ir import Graph
from cnnspec.passes import Analysis


class LayerRow(BaseModel):
    """One layer or join of the network."""

    path: str
    op: str
    output_shape: list[int]
    params: int
    buffers: int
    macs: int
    file: str
    line: int
    col: int


class Report(BaseModel):
    """What `cnnspec check` knows about a network without running it."""

    network: str
    params: dict[str, object]
    input_shape: list[int]
    output_shape: list[int]
    total_params: int
    trainable_params: int
    buffers: int
    macs: int
    layers: list[LayerRow]
    warnings: list[dict[str, object]] = []

    @property
    def summary(self) -> str:
        """The human-readable table."""
        from cnnspec.summary import format_report

        return format_report(self)


def build_report(graph: Graph, analysis: Analysis, warnings: list[Diagnostic] | None = None) -> Report:
    """Assemble the report from the graph and the pass results."""
    rows = []
    for node in graph.layers():
        params, buffers = analysis.params.get(node.id, (0, 0))
        rows.append(
            LayerRow(
                path=node.path,
                op=node.kind,
                output_shape=list(node.out_shape),
                params=params,
                buffers=buffers,
                macs=analysis.macs.get(node.id, 0),
                file=node.span.file,
                line=node.span.line,
                col=node.span.col,
            )
        )
    trainable = analysis.trainable_params
    return Report(
        network=graph.network,
        params={k: v for k, v in graph.params.items() if isinstance(v, (int, float, str, bool, list))},
        input_shape=list(graph.input_shape),
        output_shape=list(graph.output_shape),
        total_params=trainable,
        trainable_params=trainable,
        buffers=analysis.buffers,
        macs=analysis.total_macs,
        layers=rows,
        warnings=[d.to_dict() for d in warnings or []],
    )
