"""Runs the static passes and holds their results for reports and backends."""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from cnnspec.analysis.channels import channel_dims
from cnnspec.analysis.macs import count_macs
from cnnspec.analysis.memory import Saved, activation_bytes, saved_tensors
from cnnspec.analysis.params import count_params
from cnnspec.analysis.receptive import Receptive, receptive_fields
from cnnspec.ir import Graph

#: Every static pass: (the Analysis attribute it fills, a pure function of the graph giving one
#: entry per node id). Adding a pass is one line here and its type on Analysis.
PASSES: tuple[tuple[str, Callable[[Graph], list[Any]]], ...] = (
    ("params", count_params),
    ("macs", count_macs),
    ("saved", saved_tensors),
    ("receptive", receptive_fields),
    ("channels", channel_dims),
)
_BY_NAME = dict(PASSES)


class Analysis:
    """The results of the passes over one graph: lists indexed by node id, None where a node has no entry.

    Each pass runs when its result is first read and is kept: `check` reads the
    totals only, so it never pays for the receptive fields the rows show.
    """

    #: (trainable parameters, buffer elements); None for nodes without a module.
    params: list[tuple[int, int] | None]
    #: MACs of one sample; None for the input.
    macs: list[int | None]
    #: Bytes autograd keeps for backward (see cnnspec.analysis.memory); None for the input.
    saved: list[Saved | None]
    #: Receptive field and jump of every node (the input included).
    receptive: list[Receptive]
    #: The dim (after the batch) that holds each node's channels, None where none does.
    channels: list[int | None]

    def __init__(self, graph: Graph) -> None:
        #: The graph the passes run over.
        self.graph = graph

    def __getattr__(self, name: str) -> Any:
        # Called only for an attribute not yet set: a pass not yet run.
        run = _BY_NAME.get(name)
        if run is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = self.__dict__[name] = run(self.graph)
        return value

    def __repr__(self) -> str:
        return f"Analysis({self.graph.network!r}, ran={sorted(set(self.__dict__) & set(_BY_NAME))})"

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
    """The passes in PASSES over a graph, each run when its result is first read."""
    return Analysis(graph)
