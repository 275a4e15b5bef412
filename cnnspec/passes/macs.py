"""MACs: multiply-accumulates of one sample, by the convention in cnnspec.layers.builtin."""

from __future__ import annotations

from cnnspec.ir import Graph
from cnnspec.layers.registry import Attrs, lookup


def count_macs(graph: Graph) -> dict[int, int]:
    """MACs of every node for one input sample."""
    out: dict[int, int] = {}
    # Replayed block instances share their attrs dict: count each (op, attrs, shapes) once.
    seen: dict[tuple, int] = {}
    origin = graph.origins()
    for node in graph.layers():
        nid = node.id
        o = origin[nid]
        if o != nid:  # a replayed layer does what its source does
            macs = out.get(o)
            if macs is not None:
                out[nid] = macs
            continue
        kind = lookup(node.kind)
        if kind is None:
            continue
        x = node.in_shapes[0] if kind.arity == "one" else tuple(node.in_shapes)
        key = (node.kind, id(node.attrs), x, node.out_shape)
        macs = seen.get(key)
        if macs is None:
            macs = seen[key] = kind.macs(Attrs(node.attrs), x, node.out_shape)
        out[nid] = macs
    return out
