"""The driver of passes whose result for a layer depends on its op, arguments and shapes alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cnnspec.ir import Graph, Node

V = TypeVar("V")


def per_layer(graph: Graph, compute: Callable[[Node], V | None]) -> dict[int, V]:
    """compute(node) for every layer elaborated afresh (None: no entry); a replayed layer
    (cnnspec.ir.Copy) has its source's entry, being the same op on the same shapes."""
    out: dict[int, V] = {}
    origin = graph.origins()
    for node in graph.layers():
        nid = node.id
        o = origin[nid]
        value = out.get(o) if o != nid else compute(node)
        if value is not None:
            out[nid] = value
    return out
