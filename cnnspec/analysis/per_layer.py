"""The driver of passes whose result for a layer depends on its op, arguments and shapes alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cnnspec.ir import Graph, Node
from cnnspec.layers.registry import Attrs

V = TypeVar("V")


def per_layer(graph: Graph, compute: Callable[[Node], V | None]) -> list[V | None]:
    """compute(node) of every node by id (None: no entry, as for the input), computed for the
    layers elaborated afresh; a replayed layer (cnnspec.ir.Copy) has its source's entry, being
    the same op on the same shapes."""
    nodes = graph.slots  # only the nodes elaborated afresh are read: no copy is made
    values: list[V | None] = [None] * len(nodes)
    for start, stop, copy in graph.runs():
        if copy is not None:
            # A copy's source precedes it, so its values are already here: one slice per run.
            values[start:stop] = values[copy.source : copy.source + copy.count] * len(copy.paths)
        else:
            first = max(start, 1)  # node 0 is the input: no entry
            values[first:stop] = [compute(node) for node in nodes[first:stop]]
    return values


def attrs_of(node: Node) -> Attrs:
    """A node's arguments as the layer table's rules take them (the elaborator already made them Attrs)."""
    a = node.attrs
    return a if type(a) is Attrs else Attrs(a)
