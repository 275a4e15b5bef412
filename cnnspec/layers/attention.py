"""The attention kinds of the layer table: `attention` and `window_attention`.

Why two built-ins and not one per paper: `attention` is plain multi-head
self-attention over a token sequence N×D (ViT, and any transformer encoder);
its module is nn.MultiheadAttention, so its weights load that module's keys.
`window_attention` is the one other token mixer the vision families need:
Swin's attention within (shifted) windows of a channels-last map H×W×C. Its
padding, roll, partition, relative-position bias and shift mask belong
together (the bias table is indexed by positions inside a window, the mask by
where the roll moved them), and torchvision keeps all of its tensors on one
module (qkv, proj, relative_position_bias_table, relative_position_index), so
it is one kind rather than a chain of layout ops around `attention`.

MAC convention (the docs' table says it too): the projections are counted as
linear layers (N·D·3D for q, k, v, N·D·D for the output), and the two matrix
products of each head, QKᵀ and AV, as N·N·(D/heads) each, over all heads
N·N·D each. Softmax, scaling, the bias and the mask cost nothing, as
activations and joins cost nothing elsewhere. For windows, N is the tokens of
one window and the products are counted per window, on the map padded to
whole windows, as torch computes them.

Receptive field: a token mixer lets each output see every token (or every
token of its window, moved by the shift), which the sliding-window arithmetic
cannot express; its rule says the field is not defined from there on.
"""

from __future__ import annotations

import math
from typing import Any

from cnnspec.diagnostics.codes import E301, E305
from cnnspec.layers.dims import need_rank
from cnnspec.layers.kind import (
    F32,
    Arg,
    Attrs,
    LayerKind,
    Saves,
    Shape,
    ShapeError,
    boolean,
    nonneg_int,
    positive_int,
    probability,
    rf_undefined,
)


def _heads_divide(kind: str, heads: int, width: int) -> None:
    if width % heads:
        small = [d for d in range(1, min(width, 4096) + 1) if width % d == 0][:12]
        raise ShapeError(
            f"{kind}: {heads} heads do not divide the width {width}",
            help=f"choose heads among the divisors of {width}: {', '.join(map(str, small))}",
            code=E305,
        )


def _attention_shape(a: Attrs, x: Shape) -> Shape:
    need_rank("attention", x, 2, "a token sequence N×D",
              help="turn a C×H×W map into H·W tokens of C features first (flatten, then permute)")
    _heads_divide("attention", a["heads"], x[1])
    return x


def _attention_count(a: Attrs, x: Shape) -> tuple[int, int]:
    d = x[1]
    return (4 * d * d + (4 * d if a["bias"] else 0), 0)


def _attention_macs(a: Attrs, x: Shape, y: Shape) -> int:
    n, d = x
    return 4 * n * d * d + 2 * n * n * d  # q, k, v and out projections; QKᵀ and AV


def _attention_saves(a: Attrs, x: Shape, y: Shape, device: str) -> Saves:
    # Measured on CPU (tests/test_attention.py): the input (for the in-projection), the packed
    # q, k, v and the heads' output (for the out-projection); without dropout, scaled dot-product
    # attention keeps its logsumexp (heads·N); with dropout, the math path keeps k and v apart
    # again, the softmax's output, its dropped copy and the dropout mask (heads·N·N each).
    n, d = x
    heads = a["heads"]
    if not a["dropout"]:
        return (0,), (3 * n * d + heads * n + n * d) * F32, 0
    mask = heads * n * n * (1 if device == "cuda" else F32)
    return (0,), (6 * n * d + 2 * heads * n * n) * F32 + mask, 0


def _attention_module(a: Attrs, x: Shape, inplace: bool) -> Any:
    from cnnspec.layers.attention_nn import SelfAttention

    return SelfAttention(x[1], a.heads, dropout=a.dropout, bias=a.bias)


ATTENTION = LayerKind(
    name="attention",
    weight_dims=2,
    doc="Multi-head self-attention over N×D tokens; loads nn.MultiheadAttention's keys (in_proj_weight, out_proj).",
    args=(
        Arg("heads", positive_int, doc="attention heads; they must divide the width D"),
        Arg("dropout", probability, 0.0, doc="dropout on the attention weights", varies="rates"),
        Arg("bias", boolean, True, doc="biases on the projections"),
    ),
    shape=_attention_shape,
    count=_attention_count,
    macs=_attention_macs,
    module=_attention_module,
    saves=_attention_saves,
    receptive=rf_undefined,
    label=lambda a: f"attention, {a['heads']} heads",
    category="linear",
    lowers_to="nn.MultiheadAttention(x, x, x), batch first",
)


def _window_shape(a: Attrs, x: Shape) -> Shape:
    need_rank("window_attention", x, 3, "a channels-last map H×W×C", help="permute a C×H×W map to H×W×C first")
    h, w, c = x
    win = a["window"]
    if win > h or win > w:
        raise ShapeError(
            f"window_attention: a {win}×{win} window is larger than the {h}×{w} map",
            help=f"use a window of at most {min(h, w)}, or check the input size with --input",
            code=E301,
        )
    if a["shift"] >= win:
        raise ShapeError(
            f"window_attention: the shift {a['shift']} must be less than the window {win}",
            help=f"Swin shifts by half the window: shift = {win // 2}",
            code=E301,
        )
    _heads_divide("window_attention", a["heads"], c)
    return x


def _padded(a: Attrs, x: Shape) -> tuple[int, int, int]:
    """The map padded to whole windows: (windows, tokens per window, channels)."""
    h, w, c = x
    win = a["window"]
    return math.ceil(h / win) * math.ceil(w / win), win * win, c


def _window_count(a: Attrs, x: Shape) -> tuple[int, int]:
    c, win = x[2], a["window"]
    # qkv and proj with biases, the bias table per head; the index buffer holds (win²)² entries.
    return (4 * c * c + 4 * c + (2 * win - 1) ** 2 * a["heads"], win**4)


def _window_macs(a: Attrs, x: Shape, y: Shape) -> int:
    windows, n, c = _padded(a, x)
    return windows * (4 * n * c * c + 2 * n * n * c)


def _window_saves(a: Attrs, x: Shape, y: Shape, device: str) -> Saves:
    # Measured on CPU: the windows cut from the map (the qkv projection's input; the input itself
    # when the map is one window, without padding), q, kᵀ and v, the softmax's output and the
    # heads' output (the proj's input); dropout adds the dropped weights and its mask.
    windows, n, c = _padded(a, x)
    tokens, weights = windows * n, windows * a["heads"] * n * n
    extra = weights * F32 + weights * (1 if device == "cuda" else F32) if a["dropout"] else 0
    if windows == 1 and x[0] * x[1] == n:
        return (0,), (4 * tokens * c + weights) * F32 + extra, 0
    return (), (5 * tokens * c + weights) * F32 + extra, 0


def _window_module(a: Attrs, x: Shape, inplace: bool) -> Any:
    from cnnspec.layers.attention_nn import WindowAttention

    return WindowAttention(x[2], a.window, a.shift, a.heads, attention_dropout=a.dropout)


WINDOW_ATTENTION = LayerKind(
    name="window_attention",
    weight_dims=2,
    doc="Swin's multi-head attention within window×window windows of an H×W×C map, shifted by `shift`; "
    "loads torchvision's ShiftedWindowAttention keys.",
    args=(
        Arg("heads", positive_int, doc="attention heads; they must divide the channels C"),
        Arg("window", positive_int, doc="the window's side"),
        Arg("shift", nonneg_int, 0, doc="the cyclic shift (Swin: window // 2 in every other block)", varies="shifts"),
        Arg("dropout", probability, 0.0, doc="dropout on the attention weights", varies="rates"),
    ),
    shape=_window_shape,
    count=_window_count,
    macs=_window_macs,
    module=_window_module,
    saves=_window_saves,
    receptive=rf_undefined,
    label=lambda a: (
        f"window_attention {a['window']}×{a['window']}, {a['heads']} heads"
        + (f", shift {a['shift']}" if a["shift"] else "")
    ),
    category="linear",
    lowers_to="cnnspec.layers.attention_nn.WindowAttention (torchvision's ShiftedWindowAttention)",
)
