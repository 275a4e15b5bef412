"""Receptive field and effective stride (jump) of every node, computed statically.

For a window op with kernel k, stride s and dilation d, following Araujo et
al. 2019 ("Computing Receptive Fields of Convolutional Neural Networks"):

    rf_out   = rf_in + (d·(k − 1)) · jump_in
    jump_out = jump_in · s

starting from rf = 1, jump = 1 at the input. Padding moves a window but does
not widen it, so it does not enter. Each layer kind's `receptive` rule in the
layer table gives the window it slides (cnnspec.layers.kind: rf_window,
rf_adaptive, rf_whole), or None where each output sees what its input sees.
A join (any kind of arity "many") sees what its widest branch sees, on the grid of its branches at its own resolution (a
branch broadcast from 1×1, as a squeeze-and-excitation gate, sets no grid:
its jump is that of a global pool, not the spacing of the output).
Adaptive pooling is a window of the size torch uses (global pooling covers
the whole map); flatten and everything after it see the whole map. Past a
token mixer (attention) the field is not defined (UNDEFINED, 0×0, shown as
"n/a") rather than a number that would be wrong. Values
are not clipped to the image: ResNet-50's last layer "sees" 483 pixels of a
224-pixel input, counted on the padded plane.
"""

from __future__ import annotations

from typing import NamedTuple

from cnnspec.ir import Graph, Node
from cnnspec.layers.attention import RF_UNDEFINED
from cnnspec.layers.kind import Attrs, Window
from cnnspec.layers.registry import lookup

Pair = tuple[int, int]


class Receptive(NamedTuple):
    """Receptive field (height, width) in input pixels and the jump between adjacent outputs."""

    rf: Pair
    jump: Pair

    def text(self) -> str:
        """7, or 7×11 when not square; n/a past a token mixer."""
        h, w = self.rf
        if (h, w) == (0, 0):
            return "n/a"
        return str(h) if h == w else f"{h}×{w}"


_ORIGIN = Receptive((1, 1), (1, 1))


def _slide(x: Receptive, window: Window) -> Receptive:
    (rh, rw), (jh, jw) = x
    kernel, stride, dilation = window
    rf = (rh + dilation[0] * (kernel[0] - 1) * jh, rw + dilation[1] * (kernel[1] - 1) * jw)
    return Receptive(rf, (jh * stride[0], jw * stride[1]))


def _join(node: Node, inputs: list[Receptive]) -> Receptive:
    rf = (max(r.rf[0] for r in inputs), max(r.rf[1] for r in inputs))
    # The output's grid is that of the branches at its resolution: a gate broadcast from 1×1
    # (squeeze-and-excitation's) widens what the output sees but does not space its positions.
    hw = node.out_shape[1:]
    grid = [r for r, s in zip(inputs, node.in_shapes, strict=False) if len(hw) != 2 or s[1:] == hw] or inputs
    jump = (max(r.jump[0] for r in grid), max(r.jump[1] for r in grid))
    return Receptive(rf, jump)


#: The field past a token mixer (attention): not defined, shown as such; rule RF_UNDEFINED gives it.
UNDEFINED = Receptive((0, 0), (0, 0))


def node_receptive(node: Node, inputs: list[Receptive]) -> Receptive:
    """The receptive field of one node given those of its inputs (UNDEFINED from a token mixer on)."""
    kind = lookup(node.kind)
    if not inputs or kind is None:
        return _ORIGIN
    if UNDEFINED in inputs:
        return UNDEFINED
    if kind.is_join:
        return _join(node, inputs)
    window = kind.receptive(Attrs(node.attrs), node.in_shapes[0], node.out_shape)
    if window == RF_UNDEFINED:
        return UNDEFINED
    return inputs[0] if window is None else _slide(inputs[0], window)


def receptive_fields(graph: Graph) -> list[Receptive]:
    """Receptive field and jump of every node by id, the input included (rf 1, jump 1)."""
    fields: list[Receptive] = []
    for node in graph.nodes:  # in id order: inputs come first
        fields.append(node_receptive(node, [fields[j] for j in node.inputs]))
    return fields
