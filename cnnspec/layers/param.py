"""Learned tensors: `param`, a parameter (or, with `buffer = true`, a buffer) owned by the spec.

A `param` is a layer of arity "none": it ignores its input and gives its
tensor, so it stands as a branch of a join: ConvNeXt's layer scale
(`mul { block: ...; layer_scale: param([d, 1, 1], 1e-6) }`), ViT's position
embedding (`add { identity; pos_embedding: param([1, 197, 768]) }`) and class
token (`concat { class_token: param([1, 1, 768]); identity }`).

The tensor is registered at the statement's module path exactly: a labelled
`layer_scale: param(...)` in block `features.1.0` is the state_dict key
`features.1.0.layer_scale` (torchvision's), not `...layer_scale.weight`. The
fx backend registers it on its parent scope (register_parameter or
register_buffer) and reads it with a get_attr node; a concat, which does not
broadcast, reads it expanded over the batch (ViT's
`class_token.expand(n, -1, -1)`).

Shape: `shape` is torch's shape of the tensor. It broadcasts against the
batched input from the right, as torch does, so its per-sample shape (the IR
excludes the batch) is the shape itself, with 1s in front where it has fewer
dims than the input, or without its first dim where it has one dim more than
the input: that dim stands where the batch does and must be 1.

Initialisation: every element starts at `value` (0 by default); an `init
param "path": weight = normal(std = 0.02)` rule re-initialises it with any
scheme, as for any layer (`weight` is the tensor itself).
"""

from __future__ import annotations

import math
from typing import Any

from cnnspec.diagnostics.codes import E212, E301
from cnnspec.layers.kind import (
    SAVES_NOTHING,
    Arg,
    ArgError,
    Attrs,
    LayerKind,
    Shape,
    ShapeError,
    boolean,
    number,
    shape_text,
)
from cnnspec.layers.tensor import int_list


def _sizes(v: Any) -> list[int]:
    """A list of positive sizes (an empty list is a scalar)."""
    items = int_list(v)
    for x in items:
        if x < 1:
            raise ArgError(f"sizes must be at least 1, got {x}", code=E212)
    return items


def per_sample(a: Attrs, x: Shape) -> Shape:
    """The tensor's shape as it broadcasts against the batched input x (batch excluded, as IR shapes are)."""
    shape = tuple(a["shape"])
    if len(shape) == len(x) + 1:
        if shape[0] != 1:
            raise ShapeError(
                f"param {shape_text(shape)} has one dim more than its input {shape_text(x)}, so its first dim "
                f"stands where the batch does, and it is {shape[0]}, not 1",
                help=f"write the batch's place as 1: [1, {', '.join(map(str, shape[1:]))}]",
                code=E301,
            )
        return shape[1:]
    if len(shape) > len(x) + 1:
        raise ShapeError(
            f"param {shape_text(shape)} has {len(shape)} dims, more than its input {shape_text(x)} has "
            f"with the batch ({len(x) + 1})",
            help="a param broadcasts against the batched input from the right, as torch does",
            code=E301,
        )
    return (1,) * (len(x) - len(shape)) + shape


def _count(a: Attrs, x: Shape) -> tuple[int, int]:
    n = math.prod(a["shape"])
    return (0, n) if a["buffer"] else (n, 0)


def _tensor(a: Attrs, x: Shape, inplace: bool) -> Any:
    """The tensor itself: an nn.Parameter, or a plain tensor for a buffer (the fx backend registers it)."""
    import torch

    t = torch.full(tuple(a["shape"]), float(a["value"]))
    return t if a["buffer"] else torch.nn.Parameter(t)


def _label(a: Attrs) -> str:
    return f"{'buffer' if a['buffer'] else 'param'} {shape_text(a['shape']) or 'scalar'}"


PARAM = LayerKind(
    name="param",
    doc="A learned tensor of torch's `shape` at the statement's module path (a buffer with buffer = true), "
    "every element `value`; ignores its input: a branch of add, mul or concat (layer scale, position "
    "embedding, class token). It broadcasts against the batched input from the right.",
    shape=per_sample,
    args=(
        Arg("shape", _sizes, doc="torch's shape of the tensor; [1, ...] where the batch's place is written"),
        Arg("value", number, 0.0, doc="every element's initial value; `init param` rules re-initialise it"),
        Arg("buffer", boolean, False, doc="a buffer (saved, not trained) instead of a parameter"),
    ),
    count=_count,
    module=_tensor,
    arity="none",
    saves=SAVES_NOTHING,
    label=_label,
    category="",
    lowers_to="nn.Parameter / register_buffer at the module path, read by get_attr (expanded in a concat)",
)
