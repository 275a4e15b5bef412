"""Runs the static passes and holds their results for reports and backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter

from cnnspec.ir import Graph
from cnnspec.passes.macs import count_macs
from cnnspec.passes.memory import Saved, activation_bytes, saved_tensors
from cnnspec.passes.params import count_params
from cnnspec.passes.receptive import Receptive, receptive_fields


@dataclass(frozen=True)
class Analysis:
    """Per-node results of the passes, keyed by node id."""

    params: dict[int, tuple[int, int]]
    macs: dict[int, int]
    #: Receptive field and jump of every node (the input included).
    receptive: dict[int, Receptive] = field(default_factory=dict)
    #: Bytes autograd keeps for backward, per node (see cnnspec.passes.memory).
    saved: dict[int, Saved] = field(default_factory=dict)

    @cached_property
    def trainable_params(self) -> int:
        """Total trainable parameters."""
        return sum(map(itemgetter(0), self.params.values()))

    @cached_property
    def buffers(self) -> int:
        """Total buffer elements (batch-norm running statistics and counters)."""
        return sum(map(itemgetter(1), self.params.values()))

    @cached_property
    def total_macs(self) -> int:
        """Total MACs for one sample."""
        return sum(self.macs.values())

    def activation_bytes(self, batch: int = 1) -> int:
        """Activation memory of a training step at this batch size (fp32, CPU convention)."""
        return activation_bytes(self.saved, batch)


def analyze(graph: Graph) -> Analysis:
    """Run every static pass over a graph."""
    return Analysis(
        params=count_params(graph),
        macs=count_macs(graph),
        receptive=receptive_fields(graph),
        saved=saved_tensors(graph),
    )
