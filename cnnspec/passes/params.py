"""Parameter counts: trainable parameters and buffer elements per node."""

from __future__ import annotations

from cnnspec.ir import Graph
from cnnspec.layers.registry import Attrs, lookup


def count_params(graph: Graph) -> dict[int, tuple[int, int]]:
    """(trainable parameters, buffer elements) of every node that owns a module."""
    out: dict[int, tuple[int, int]] = {}
    # Replayed block instances share their attrs dict: count each (op, attrs, input shape) once.
    seen: dict[tuple, tuple[int, int]] = {}
    for node in graph.layers():
        kind = lookup(node.kind)
        if kind is None or not node.has_module:
            continue
        key = (node.kind, id(node.attrs), node.in_shapes[0])
        counted = seen.get(key)
        if counted is None:
            counted = seen[key] = kind.count(Attrs(node.attrs), node.in_shapes[0])
        out[node.id] = counted
    return out
