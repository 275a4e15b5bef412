"""Parameter counts: trainable parameters and buffer elements per node."""

from __future__ import annotations

from cnnspec.analysis.per_layer import attrs_of as _attrs
from cnnspec.analysis.per_layer import per_layer
from cnnspec.ir import Graph, Node
from cnnspec.layers.registry import all_kinds, no_params

_NONE = (0, 0)


def count_params(graph: Graph) -> list[tuple[int, int] | None]:
    """(trainable parameters, buffer elements) of every node by id; None for one without a module."""
    kinds = all_kinds()
    # Block instances share attrs dicts: count each (op, attrs, input shape) once.
    seen: dict[tuple, tuple[int, int]] = {}

    def count(node: Node) -> tuple[int, int] | None:
        if not node.has_module:
            return None
        kind = kinds.get(node.kind)
        if kind is None:
            return None
        if kind.count is no_params:  # activations, pooling: no key to build
            return _NONE
        key = (node.kind, id(node.attrs), node.in_shapes[0])
        counted = seen.get(key)
        if counted is None:
            counted = seen[key] = kind.count(_attrs(node), node.in_shapes[0])
        return counted

    return per_layer(graph, count)
