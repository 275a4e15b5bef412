"""Where each tensor keeps its channels: the channel dim of every node, followed from the input.

A C×H×W input has its channels first; a layer that moves dims (permute, transpose, flatten,
select: LayerKind.dims_from) carries them to their new place, so a channels-last map
(Swin's H×W×C, ConvNeXt's blocks) or a sequence of tokens (ViT's N×D) is known for what it
is, which its shape alone cannot tell. The summary's stages read it to name a resolution.
"""

from __future__ import annotations

from cnnspec.ir import Graph, Node
from cnnspec.layers.registry import lookup


def channel_dims(graph: Graph) -> list[int | None]:
    """Per node id, the index (after the batch) of its output's channel dim; None where no one
    dim holds the channels (a flat vector, or a dim merged from several)."""
    dims: list[int | None] = []
    for node in graph.nodes:
        dims.append(_input_channels(node) if not node.inputs else _carried(node, dims))
    return dims


def _input_channels(node: Node) -> int | None:
    # A C×H×W map has its channels first, N×D tokens their features last.
    rank = len(node.out_shape)
    return 0 if rank == 3 else 1 if rank == 2 else None


def _carried(node: Node, dims: list[int | None]) -> int | None:
    """The channel dim of node's output, from its first input that has one (a join's learned
    tensor has none)."""
    source = next((i for i, nid in enumerate(node.inputs) if dims[nid] is not None), None)
    if source is None or not node.in_shapes or not node.out_shape:
        return None
    channel, x = dims[node.inputs[source]], node.in_shapes[source]
    kind = lookup(node.kind)
    if kind is not None and kind.dims_from is not None:
        moved = kind.dims_from(node.attrs, x)
        return moved.index(channel) if channel in moved else None
    return channel if len(x) == len(node.out_shape) else None
