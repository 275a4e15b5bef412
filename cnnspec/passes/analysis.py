"""Runs the static passes and holds their results for reports and backends."""

from __future__ import annotations

from dataclasses import dataclass

from cnnspec.ir import Graph
from cnnspec.passes.macs import count_macs
from cnnspec.passes.params import count_params


@dataclass(frozen=True)
class Analysis:
    """Per-node results of the passes, keyed by node id."""

    params: dict[int, tuple[int, int]]
    macs: dict[int, int]

    @property
    def trainable_params(self) -> int:
        """Total trainable parameters."""
        return sum(p for p, _ in self.params.values())

    @property
    def buffers(self) -> int:
        """Total buffer elements (batch-norm running statistics and counters)."""
        return sum(b for _, b in self.params.values())

    @property
    def total_macs(self) -> int:
        """Total MACs for one sample."""
        return sum(self.macs.values())


def analyze(graph: Graph) -> Analysis:
    """Run every static pass over a graph."""
    return Analysis(params=count_params(graph), macs=count_macs(graph))
