"""Parameter counts: trainable parameters and buffer elements per node."""

from __future__ import annotations

from cnnspec.ir import Graph
from cnnspec.layers.registry import Attrs, lookup


def count_params(graph: Graph) -> dict[int, tuple[int, int]]:
    """(trainable parameters, buffer elements) of every node that owns a module."""
    out: dict[int, tuple[int, int]] = {}
    # Replayed block instances share their attrs dict: count each (op, attrs, input shape) once.
    seen: dict[tuple, tuple[int, int]] = {}
    origin = graph.origins()
    for node in graph.layers():
        nid = node.id
        o = origin[nid]
        if o != nid:  # a replayed layer counts what its source counts
            counted = out.get(o)
            if counted is not None:
                out[nid] = counted
            continue
        kind = lookup(node.kind)
        if kind is None or not node.has_module:
            continue
        key = (node.kind, id(node.attrs), node.in_shapes[0])
        counted = seen.get(key)
        if counted is None:
            counted = seen[key] = kind.count(Attrs(node.attrs), node.in_shapes[0])
        out[nid] = counted
    return out
