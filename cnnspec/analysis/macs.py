"""MACs: multiply-accumulates of one sample, by the convention in cnnspec.layers.builtin."""

from __future__ import annotations

from cnnspec.analysis.per_layer import attrs_of as _attrs
from cnnspec.analysis.per_layer import per_layer
from cnnspec.ir import Graph, Node
from cnnspec.layers.registry import all_kinds, no_macs


def count_macs(graph: Graph) -> list[int | None]:
    """MACs of every node for one input sample, by id; None for the input and ops the table lacks."""
    kinds = all_kinds()
    # Block instances share attrs dicts: count each (op, attrs, shapes) once.
    seen: dict[tuple, int] = {}

    def count(node: Node) -> int | None:
        kind = kinds.get(node.kind)
        if kind is None:
            return None
        if kind.macs is no_macs:  # normalisation, activations, pooling, joins: no key to build
            return 0
        key = (node.kind, id(node.attrs), node.in_shapes, node.out_shape)
        macs = seen.get(key)
        if macs is None:
            x = node.in_shapes[0] if kind.arity == "one" else node.in_shapes
            macs = seen[key] = kind.macs(_attrs(node), x, node.out_shape)
        return macs

    return per_layer(graph, count)
