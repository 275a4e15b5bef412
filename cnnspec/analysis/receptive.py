"""Receptive field and effective stride (jump) of every node, computed statically.

For a window op with kernel k, stride s and dilation d, following Araujo et
al. 2019 ("Computing Receptive Fields of Convolutional Neural Networks"):

    rf_out   = rf_in + (d·(k − 1)) · jump_in
    jump_out = jump_in · s

starting from rf = 1, jump = 1 at the input. Padding moves a window but does
not widen it, so it does not enter. A join (add, concat, mul) sees what its
widest branch sees, on the grid of its branches at its own resolution (a
branch broadcast from 1×1, as a squeeze-and-excitation gate, sets no grid:
its jump is that of a global pool, not the spacing of the output).
Adaptive pooling is a window of the size torch uses (global pooling covers
the whole map); flatten and everything after it see the whole map. Values
are not clipped to the image: ResNet-50's last layer "sees" 483 pixels of a
224-pixel input, counted on the padded plane.
"""

from __future__ import annotations

from typing import NamedTuple

from cnnspec.ir import Graph, Node

Pair = tuple[int, int]


class Receptive(NamedTuple):
    """Receptive field (height, width) in input pixels and the jump between adjacent outputs."""

    rf: Pair
    jump: Pair

    def text(self) -> str:
        """7, or 7×11 when not square."""
        h, w = self.rf
        return str(h) if h == w else f"{h}×{w}"


_ORIGIN = Receptive((1, 1), (1, 1))


def _pair(v: object, default: Pair) -> Pair:
    if v is None:
        return default
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return (int(v[0]), int(v[1]))
    return default


def _window(x: Receptive, kernel: Pair, stride: Pair, dilation: Pair) -> Receptive:
    (rh, rw), (jh, jw) = x
    rf = (rh + dilation[0] * (kernel[0] - 1) * jh, rw + dilation[1] * (kernel[1] - 1) * jw)
    return _make(Receptive, (rf, (jh * stride[0], jw * stride[1])))


# Receptive(rf, jump) without the Python-level __new__ a NamedTuple adds: this pass makes one per node.
_make = tuple.__new__


def _adaptive(in_hw: Pair, out_hw: Pair) -> tuple[Pair, Pair]:
    """The widest window and the stride of torch's adaptive pooling from in_hw to out_hw."""
    kernel, stride = [], []
    for n, m in zip(in_hw, out_hw, strict=True):
        # torch's window i spans [floor(i·n/m), ceil((i+1)·n/m)); the widest is ceil(n/m) (+1 when uneven).
        k = max(-(-((i + 1) * n) // m) - (i * n) // m for i in range(m))
        kernel.append(k)
        stride.append(max(1, n // m))
    return (kernel[0], kernel[1]), (stride[0], stride[1])


def node_receptive(node: Node, inputs: list[Receptive]) -> Receptive:
    """The receptive field of one node given those of its inputs."""
    if not inputs:
        return _ORIGIN
    if len(inputs) > 1:
        rf = (max(r.rf[0] for r in inputs), max(r.rf[1] for r in inputs))
        # The output's grid is that of the branches at its resolution: a gate broadcast from 1×1
        # (squeeze-and-excitation's) widens what the output sees but does not space its positions.
        hw = node.out_shape[1:]
        grid = [r for r, s in zip(inputs, node.in_shapes, strict=False) if len(hw) != 2 or s[1:] == hw] or inputs
        jump = (max(r.jump[0] for r in grid), max(r.jump[1] for r in grid))
        return Receptive(rf, jump)
    x = inputs[0]
    a = node.attrs
    in_shape = node.in_shapes[0] if node.in_shapes else ()
    if node.kind.startswith("adaptive_") and len(in_shape) == 3:
        kernel, stride = _adaptive((in_shape[1], in_shape[2]), (node.out_shape[1], node.out_shape[2]))
        return _window(x, kernel, stride, (1, 1))
    if "kernel" in a and len(in_shape) == 3:
        kernel = _pair(a["kernel"], (1, 1))
        # Pooling's stride defaults to its kernel (None in the attrs).
        stride = _pair(a.get("stride"), kernel)
        return _window(x, kernel, stride, _pair(a.get("dilation"), (1, 1)))
    if len(in_shape) == 3 and len(node.out_shape) == 1:
        # flatten (or any map-to-vector op): every output sees the whole map.
        return _window(x, (in_shape[1], in_shape[2]), (in_shape[1], in_shape[2]), (1, 1))
    return x


def receptive_fields(graph: Graph) -> list[Receptive]:
    """Receptive field and jump of every node by id, the input included (rf 1, jump 1)."""
    fields: list[Receptive] = []  # by node id, which is the index
    for node in graph.nodes:
        fields.append(node_receptive(node, [fields[j] for j in node.inputs]))
    return fields
