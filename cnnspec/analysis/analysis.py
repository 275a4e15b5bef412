"""Runs the static passes and holds their results for reports and backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter

from cnnspec.analysis.macs import count_macs
from cnnspec.analysis.memory import Saved, activation_bytes, saved_tensors
from cnnspec.analysis.params import count_params
from cnnspec.analysis.receptive import Receptive, receptive_fields
from cnnspec.ir import Graph


@dataclass(frozen=True)
class Analysis:
    """Per-node results of the passes: lists indexed by node id, None where a node has no entry.

    Lists rather than dicts: a replayed block instance's entries are a slice of its source's.
    """

    #: (trainable parameters, buffer elements); None for nodes without a module.
    params: list[tuple[int, int] | None]
    #: MACs of one sample; None for the input.
    macs: list[int | None]
    #: Bytes autograd keeps for backward (see cnnspec.analysis.memory); None for the input.
    saved: list[Saved | None]
    #: The graph the passes ran over (for the receptive fields, computed when first asked for).
    graph: Graph = field(repr=False, compare=False)

    @cached_property
    def receptive(self) -> list[Receptive]:
        """Receptive field and jump of every node (the input included).

        Computed on first use: only the rows of a report and the diagrams show
        them, and a caller that wants the totals does not pay for them.
        """
        return receptive_fields(self.graph)

    @cached_property
    def trainable_params(self) -> int:
        """Total trainable parameters."""
        return sum(map(itemgetter(0), filter(None, self.params)))

    @cached_property
    def buffers(self) -> int:
        """Total buffer elements (batch-norm running statistics and counters)."""
        return sum(map(itemgetter(1), filter(None, self.params)))

    @cached_property
    def total_macs(self) -> int:
        """Total MACs for one sample."""
        return sum(filter(None, self.macs))

    def activation_bytes(self, batch: int = 1) -> int:
        """Activation memory of a training step at this batch size (fp32, CPU convention)."""
        return activation_bytes(self.saved, batch)


def analyze(graph: Graph) -> Analysis:
    """Run every static pass over a graph."""
    return Analysis(
        params=count_params(graph),
        macs=count_macs(graph),
        saved=saved_tensors(graph),
        graph=graph,
    )
