"""Runs the static passes and holds their results for reports and backends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from cnnspec.analysis.macs import count_macs
from cnnspec.analysis.memory import Saved, activation_bytes, saved_tensors
from cnnspec.analysis.params import count_params
from cnnspec.analysis.receptive import Receptive, receptive_fields
from cnnspec.ir import Graph

#: Every static pass, in the order run: (the Analysis field it fills, a pure function of the graph
#: giving one entry per node id). Adding a pass is one line here and one field on Analysis.
PASSES: tuple[tuple[str, Callable[[Graph], list[Any]]], ...] = (
    ("params", count_params),
    ("macs", count_macs),
    ("saved", saved_tensors),
    ("receptive", receptive_fields),
)


@dataclass(frozen=True)
class Analysis:
    """Per-node results of the passes: lists indexed by node id, None where a node has no entry."""

    #: (trainable parameters, buffer elements); None for nodes without a module.
    params: list[tuple[int, int] | None]
    #: MACs of one sample; None for the input.
    macs: list[int | None]
    #: Bytes autograd keeps for backward (see cnnspec.analysis.memory); None for the input.
    saved: list[Saved | None]
    #: Receptive field and jump of every node (the input included).
    receptive: list[Receptive]
    #: The graph the passes ran over.
    graph: Graph = field(repr=False, compare=False)

    @property
    def trainable_params(self) -> int:
        """Total trainable parameters."""
        return sum(map(itemgetter(0), filter(None, self.params)))

    @property
    def buffers(self) -> int:
        """Total buffer elements (batch-norm running statistics and counters)."""
        return sum(map(itemgetter(1), filter(None, self.params)))

    @property
    def total_macs(self) -> int:
        """Total MACs for one sample."""
        return sum(filter(None, self.macs))

    def activation_bytes(self, batch: int = 1) -> int:
        """Activation memory of a training step at this batch size (fp32, CPU convention)."""
        return activation_bytes(self.saved, batch)


def analyze(graph: Graph) -> Analysis:
    """Run every pass in PASSES over a graph."""
    return Analysis(graph=graph, **{name: run(graph) for name, run in PASSES})
