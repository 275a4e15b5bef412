"""Parameter counts: trainable parameters and buffer elements per node."""

from __future__ import annotations

from cnnspec.analysis.per_layer import attrs_of, per_layer
from cnnspec.ir import Graph, Node
from cnnspec.layers.registry import all_kinds


def count_params(graph: Graph) -> list[tuple[int, int] | None]:
    """(trainable parameters, buffer elements) of every node by id; None for one without a module."""
    kinds = all_kinds()

    def count(node: Node) -> tuple[int, int] | None:
        kind = kinds.get(node.kind)
        if not node.has_module or kind is None:
            return None
        return kind.count(attrs_of(node), node.in_shapes[0])

    return per_layer(graph, count)
