"""The driver of passes whose result for a layer depends on its op, arguments and shapes alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cnnspec.ir import Graph, Node
from cnnspec.layers.kind import Attrs

V = TypeVar("V")


def per_layer(graph: Graph, compute: Callable[[Node], V | None]) -> list[V | None]:
    """compute(node) of every node by id; None for the input, which has no entry."""
    return [None, *map(compute, graph.layers())]


def attrs_of(node: Node) -> Attrs:
    """A node's arguments as the layer table's rules take them (the elaborator already made them Attrs)."""
    a = node.attrs
    return a if type(a) is Attrs else Attrs(a)
