"""MACs: multiply-accumulates of one sample, by the convention in cnnspec.layers.builtin."""

from __future__ import annotations

from cnnspec.analysis.per_layer import attrs_of, per_layer
from cnnspec.ir import Graph, Node
from cnnspec.layers.registry import all_kinds


def count_macs(graph: Graph) -> list[int | None]:
    """MACs of every node for one input sample, by id; None for the input and ops the table lacks."""
    kinds = all_kinds()

    def count(node: Node) -> int | None:
        kind = kinds.get(node.kind)
        if kind is None:
            return None
        x = node.in_shapes if kind.is_join else node.in_shapes[0]
        return kind.macs(attrs_of(node), x, node.out_shape)

    return per_layer(graph, count)
