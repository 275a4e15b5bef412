"""The tensor ops of the layer table: layout, reductions, splits and resampling.

Layout: permute, reshape, transpose, select, slice, pad, roll (and flatten's
start/end, in cnnspec.layers.builtin); reductions: mean; splits: chunk,
channel_shuffle; resampling: upsample, conv_transpose. They let a spec say
the bodies of ConvNeXt (channels-last blocks), ViT (patches to tokens, the
class token's pick) and Swin (patch merging's strided slices, padding to a
window multiple, the shifted window's roll).

Dimension convention: dims are torch's own, the batch included, so a spec
reads like the torch code it twins: dim 0 is the batch, which no op may move
or remove; dim 1 the channels of a C×H×W map (or the tokens of an N×D
sequence); a negative dim counts from the end. Shapes in the IR exclude the
batch (cnnspec.layers.kind), so torch dim d is index d − 1 of a shape.

Receptive field: it is defined on C×H×W maps and flat features. An op that
keeps the map's layout keeps it (padding, a channel pick, a chunk, a
shuffle); a strided slice of the height or width is a 1-wide window of that
stride; an op that moves, merges or wraps dimensions (permute, reshape,
transpose, roll), resamples (upsample, conv_transpose) or mixes along a
dimension that may not be channels states it as not defined past itself
(rf_undefined) rather than guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cnnspec.diagnostics.codes import E212, E301, E304, E305, E306, E310, E311, E312, E313
from cnnspec.layers.dims import batched, dim_index, need_rank, torch_dim
from cnnspec.layers.kind import (
    SAVES_NOTHING,
    Arg,
    ArgError,
    Attrs,
    LayerKind,
    Shape,
    ShapeError,
    Window,
    any_int,
    as_int,
    boolean,
    choice,
    nonneg_int,
    number,
    optional,
    pair,
    positive_int,
    positive_number,
    rf_undefined,
    rf_whole,
    shape_text,
)


def _nn() -> Any:
    import torch.nn

    return torch.nn


# ------------------------------------------------------------- arguments


def int_list(v: Any) -> list[int]:
    """A list of ints, or one int (a list of one)."""
    if isinstance(v, (list, tuple)):
        return [as_int(x, "a list of ints") for x in v]
    return [as_int(v, "an int or a list of ints")]


def dims_list(v: Any) -> list[int]:
    """A non-empty list of dims, or one dim (an empty list would make torch.mean reduce the batch too)."""
    items = int_list(v)
    if not items:
        raise ArgError("expected at least one dim, got an empty list", code=E212)
    return items


def positive_list(v: Any) -> list[int]:
    """A non-empty list of positive ints."""
    items = int_list(v)
    if not items:
        raise ArgError("expected at least one size, got an empty list", code=E212)
    for x in items:
        if x < 1:
            raise ArgError(f"sizes must be at least 1, got {x}", code=E212)
    return items


def sizes_one_inferred(v: Any) -> list[int]:
    """A non-empty list of positive ints, one of which may be -1: the size worked out from the others."""
    items = int_list(v)
    if not items:
        raise ArgError("expected at least one size, got an empty list", code=E212)
    for x in items:
        if x < 1 and x != -1:
            raise ArgError(f"sizes must be at least 1, or -1 for one worked out from the others, got {x}", code=E212)
    if items.count(-1) > 1:
        raise ArgError(f"only one size may be -1 (worked out from the others), got {items.count(-1)}", code=E212)
    return items


def count_or_sizes(v: Any) -> int | list[int]:
    """A number of equal chunks, or a list of chunk sizes."""
    if isinstance(v, (list, tuple)):
        return positive_list(v)
    return positive_int(v)


def _need_rank3(kind: str, x: Shape) -> None:
    need_rank(kind, x, 3, "a C×H×W feature map", got=shape_text(x),
              help="move this layer before `flatten`, or bring the input back to C×H×W (permute, reshape)")


def _same_layout(a: Attrs, x: Any, y: Shape) -> Window | None:
    """Each output sees what its input sees where the op keeps a map's (or flat features') layout."""
    if len(x) == len(y) and len(x) in (1, 3):
        return None
    return rf_undefined(a, x, y)


def _list_text(v: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, v)) + "]"


# ------------------------------------------------------------- permute


def _permute_shape(a: Attrs, x: Shape) -> Shape:
    dims = a["dims"]
    rank = len(x) + 1
    if len(dims) != rank:
        raise ShapeError(
            f"permute: {_list_text(dims)} orders {len(dims)} dims but the input {batched(x)} has {rank}",
            help=f"give each of the dims 0 to {rank - 1} once, the batch (0) first",
            code=E312,
        )
    norm = [torch_dim(d, rank) for d in dims]
    if sorted(norm) != list(range(rank)):
        raise ShapeError(
            f"permute: {_list_text(dims)} is not a permutation of the dims 0 to {rank - 1} of {batched(x)}",
            help=f"give each of the dims 0 to {rank - 1} once, the batch (0) first",
            code=E312,
        )
    if norm[0] != 0:
        raise ShapeError(
            f"permute: {_list_text(dims)} moves the batch dimension of {batched(x)}",
            help="dim 0 is the batch and stays first: permute([0, 2, 3, 1]) makes a C×H×W map channels-last",
            code=E310,
        )
    return tuple(x[i - 1] for i in norm[1:])


def _permute_dims_from(a: Attrs, x: Shape) -> tuple[int, ...]:
    rank = len(x) + 1
    return tuple((d + rank if d < 0 else d) - 1 for d in a["dims"][1:])


def _permute_rf(a: Attrs, x: Any, y: Shape) -> Window | None:
    rank = len(x) + 1
    identity = [torch_dim(d, rank) for d in a["dims"]] == list(range(rank))
    return None if identity else rf_undefined(a, x, y)


PERMUTE = LayerKind(
    name="permute",
    doc="Reorders the dimensions (torch.permute); dim 0, the batch, stays first: [0, 2, 3, 1] is channels-last.",
    args=(Arg("dims", int_list, doc="every dim once, the batch (0) first"),),
    shape=_permute_shape,
    function="torch.permute",
    function_args=lambda a: (list(a["dims"]),),
    saves=SAVES_NOTHING,
    view=True,
    receptive=_permute_rf,
    dims_from=_permute_dims_from,
    label=lambda a: f"permute {_list_text(a['dims'])}",
    category="reshape",
    lowers_to="torch.permute(x, dims)",
)

# ------------------------------------------------------------- reshape


def _reshape_shape(a: Attrs, x: Shape) -> Shape:
    shape = tuple(a["shape"])
    have = math.prod(x)
    if -1 in shape:
        known = -math.prod(shape)  # the product of the given sizes (the one -1 makes it negative)
        if have % known:
            sizes = [s for s in shape if s != -1]
            given = f"{shape_text(sizes)} = {known:,}" if len(sizes) > 1 else f"{known:,}"
            raise ShapeError(
                f"reshape {shape_text(x)} into {_list_text(list(shape))}: {have:,} elements do not divide by {given}",
                help="the given sizes must divide the input's elements; -1 stands for the rest",
                code=E311,
            )
        return tuple(have // known if s == -1 else s for s in shape)
    want = math.prod(shape)
    if have != want:
        raise ShapeError(
            f"reshape {shape_text(x)} into {shape_text(shape)}: {have:,} elements vs {want:,}",
            help="the sizes after the batch must hold as many elements as the input",
            code=E311,
        )
    return shape


RESHAPE = LayerKind(
    name="reshape",
    doc="Gives each sample a new shape of as many elements (torch.reshape); the batch is kept.",
    args=(Arg("shape", sizes_one_inferred, doc="the sizes after the batch, one of them -1 to work it out"),),
    shape=_reshape_shape,
    # torch.reshape(x, [-1, *shape]) takes one -1, the batch's: the node keeps the worked-out sizes.
    args_from_input=lambda a, x, y: {"shape": list(y)},
    function="torch.reshape",
    function_args=lambda a: ([-1, *a["shape"]],),
    saves=SAVES_NOTHING,
    # A view where its input is contiguous (a permuted input is copied: the copy is a new storage
    # that the memory pass attributes to the permuted input's, of the same size).
    view=True,
    receptive=lambda a, x, y: None if tuple(x) == tuple(y) else rf_undefined(a, x, y),
    label=lambda a: f"reshape {shape_text(a['shape'])}",
    category="reshape",
    lowers_to="torch.reshape(x, [-1, *shape])",
)

# ----------------------------------------------------------- transpose


def _transpose_shape(a: Attrs, x: Shape) -> Shape:
    i, j = dim_index("transpose", a["dim0"], x, "dim0"), dim_index("transpose", a["dim1"], x, "dim1")
    out = list(x)
    out[i], out[j] = out[j], out[i]
    return tuple(out)


def _transpose_dims_from(a: Attrs, x: Shape) -> tuple[int, ...]:
    i, j = dim_index("transpose", a["dim0"], x), dim_index("transpose", a["dim1"], x)
    order = list(range(len(x)))
    order[i], order[j] = j, i
    return tuple(order)


TRANSPOSE = LayerKind(
    name="transpose",
    doc="Swaps two dimensions (torch.transpose); neither may be the batch.",
    args=(Arg("dim0", any_int), Arg("dim1", any_int)),
    shape=_transpose_shape,
    function="torch.transpose",
    function_args=lambda a: (a["dim0"], a["dim1"]),
    saves=SAVES_NOTHING,
    view=True,
    receptive=lambda a, x, y: None if tuple(x) == tuple(y) and a["dim0"] == a["dim1"] else rf_undefined(a, x, y),
    dims_from=_transpose_dims_from,
    label=lambda a: f"transpose {a['dim0']}, {a['dim1']}",
    category="reshape",
    lowers_to="torch.transpose(x, dim0, dim1)",
)

# -------------------------------------------------------------- select


def _index(kind: str, index: int, size: int, i: int, x: Shape) -> int:
    if not -size <= index < size:
        raise ShapeError(
            f"{kind}: index {index} is out of range for dim {i + 1} of {batched(x)} (size {size})",
            help=f"an index from 0 to {size - 1}, or from -1 to -{size}",
            code=E313,
        )
    return index % size


def _select_shape(a: Attrs, x: Shape) -> Shape:
    i = dim_index("select", a["dim"], x)
    _index("select", a["index"], x[i], i, x)
    return x[:i] + x[i + 1 :]


def _select_dims_from(a: Attrs, x: Shape) -> tuple[int, ...]:
    i = dim_index("select", a["dim"], x)
    return tuple(j for j in range(len(x)) if j != i)


SELECT = LayerKind(
    name="select",
    doc="Picks one index of a dimension and drops it (torch.select): select(1, 0) is ViT's class token x[:, 0].",
    args=(Arg("dim", any_int), Arg("index", any_int)),
    shape=_select_shape,
    dims_from=_select_dims_from,
    function="torch.select",
    function_args=lambda a: (a["dim"], a["index"]),
    saves=SAVES_NOTHING,
    view=True,
    # One channel of a map keeps the positions; any other pick leaves no map.
    receptive=lambda a, x, y: None if len(x) == 3 and a["dim"] in (1, -3) else rf_undefined(a, x, y),
    label=lambda a: f"select {a['dim']}, {a['index']}",
    category="reshape",
    lowers_to="torch.select(x, dim, index)",
)

# --------------------------------------------------------------- slice


def _slice_range(a: Attrs, size: int) -> range:
    return range(*slice(a["start"], a["end"], a["step"]).indices(size))


def _slice_shape(a: Attrs, x: Shape) -> Shape:
    i = dim_index("slice", a["dim"], x)
    n = len(_slice_range(a, x[i]))
    if n == 0:
        end = "" if a["end"] is None else a["end"]
        raise ShapeError(
            f"slice: [{a['start']}:{end}:{a['step']}] of dim {i + 1} of {batched(x)} (size {x[i]}) is empty",
            help=f"start and end within the dimension's {x[i]} elements, start before end",
            code=E313,
        )
    return x[:i] + (n,) + x[i + 1 :]


def _slice_rf(a: Attrs, x: Any, y: Shape) -> Window | None:
    if len(x) != 3:
        return rf_undefined(a, x, y) if len(x) != 1 else None
    i = torch_dim(a["dim"], 4)
    if i == 1:
        return None
    # Every step-th row (column): a window of 1 with the step as its stride.
    stride = (a["step"], 1) if i == 2 else (1, a["step"])
    return ((1, 1), stride, (1, 1))


def _slice_module(a: Attrs, x: Shape, inplace: bool) -> Any:
    from cnnspec.layers.nn import Slice

    return Slice(a.dim, a.start, a.end, a.step)


SLICE = LayerKind(
    name="slice",
    doc="Keeps start:end:step of a dimension, as x[..., 0::2, :] does (Swin's patch merging).",
    args=(
        Arg("dim", any_int),
        Arg("start", any_int, 0),
        Arg("end", optional(any_int), None, doc="none: to the end"),
        Arg("step", positive_int, 1),
    ),
    shape=_slice_shape,
    module=_slice_module,
    saves=SAVES_NOTHING,
    view=True,
    receptive=_slice_rf,
    label=lambda a: f"slice {a['dim']}: {a['start']}:{'' if a['end'] is None else a['end']}:{a['step']}",
    category="reshape",
    lowers_to="x[..., start:end:step, ...] (cnnspec.layers.nn.Slice)",
)

# ----------------------------------------------------------------- pad


def _pad_list(v: Any) -> list[int]:
    items = int_list(v)
    if not items or len(items) % 2:
        raise ArgError(f"expected pairs of sizes (before, after), last dimension first; got {len(items)} values")
    return items


def _pad_shape(a: Attrs, x: Shape) -> Shape:
    pad = a["pad"]
    if len(pad) // 2 > len(x):
        raise ShapeError(
            f"pad: {_list_text(pad)} pads {len(pad) // 2} dims but the input {batched(x)} has {len(x)} after the "
            "batch",
            help="pairs (before, after) from the last dimension back, never the batch",
            code=E310,
        )
    out = list(x)
    for j in range(len(pad) // 2):
        i = len(x) - 1 - j
        out[i] = x[i] + pad[2 * j] + pad[2 * j + 1]
        if out[i] < 1:
            raise ShapeError(
                f"pad: {pad[2 * j]} and {pad[2 * j + 1]} leave {out[i]} of dim {i + 1}'s {x[i]} elements "
                f"({batched(x)} into {batched(tuple(out))})",
                help="negative padding crops; it must leave at least one element",
                code=E313,
            )
    return tuple(out)


PAD = LayerKind(
    name="pad",
    doc="Pads (or, negative, crops) the last dimensions with a constant (F.pad): Swin pads to a window multiple.",
    args=(
        Arg("pad", _pad_list, doc="(before, after) pairs, last dimension first, as F.pad"),
        Arg("value", number, 0.0),
    ),
    shape=_pad_shape,
    function="torch.nn.functional.pad",
    function_args=lambda a: (list(a["pad"]), "constant", a["value"]),
    saves=SAVES_NOTHING,
    receptive=_same_layout,
    label=lambda a: f"pad {_list_text(a['pad'])}",
    category="reshape",
    lowers_to='F.pad(x, pad, "constant", value)',
)

# ---------------------------------------------------------------- roll


def _roll_shape(a: Attrs, x: Shape) -> Shape:
    shifts, dims = a["shifts"], a["dims"]
    if len(shifts) != len(dims):
        raise ShapeError(
            f"roll: {len(shifts)} shifts {_list_text(shifts)} for {len(dims)} dims {_list_text(dims)}",
            help="one shift for each dim",
            code=E311,
        )
    for d in dims:
        dim_index("roll", d, x)
    return x


ROLL = LayerKind(
    name="roll",
    doc="Shifts along dimensions, wrapping around (torch.roll): Swin's shifted windows.",
    args=(Arg("shifts", int_list), Arg("dims", dims_list)),
    shape=_roll_shape,
    function="torch.roll",
    function_args=lambda a: (list(a["shifts"]), list(a["dims"])),
    saves=SAVES_NOTHING,
    receptive=rf_undefined,  # a wrapped map's edge sees the other edge
    label=lambda a: f"roll {_list_text(a['shifts'])}",
    category="reshape",
    lowers_to="torch.roll(x, shifts, dims)",
)

# ---------------------------------------------------------------- mean


def _mean_shape(a: Attrs, x: Shape) -> Shape:
    idx = [dim_index("mean", d, x) for d in a["dims"]]
    if len(set(idx)) != len(idx):
        raise ShapeError(
            f"mean: dims {_list_text(a['dims'])} name a dimension of {batched(x)} twice",
            help="each dim once",
            code=E310,
        )
    if a["keepdim"]:
        return tuple(1 if i in idx else n for i, n in enumerate(x))
    return tuple(n for i, n in enumerate(x) if i not in idx)


def _mean_rf(a: Attrs, x: Any, y: Shape) -> Window | None:
    if len(x) != 3:
        return rf_undefined(a, x, y) if len(x) != 1 else None
    idx = {torch_dim(d, 4) for d in a["dims"]}
    if {2, 3} <= idx:
        return rf_whole(a, x, y)  # over the height and width: global average pooling
    return None if idx == {1} else rf_undefined(a, x, y)


MEAN = LayerKind(
    name="mean",
    doc="Averages over the given dimensions (torch.mean): mean([2, 3]) is global average pooling.",
    args=(Arg("dims", dims_list), Arg("keepdim", boolean, False)),
    shape=_mean_shape,
    function="torch.mean",
    function_args=lambda a: (list(a["dims"]), a["keepdim"]),
    saves=SAVES_NOTHING,  # the gradient is spread evenly: only sizes are kept
    receptive=_mean_rf,
    label=lambda a: f"mean {_list_text(a['dims'])}",
    category="pool",
    lowers_to="torch.mean(x, dims, keepdim)",
)

# --------------------------------------------------------------- chunk


def _chunk_shape(a: Attrs, x: Shape) -> Shape:
    i = dim_index("chunk", a["dim"], x)
    n, chunks = x[i], a["chunks"]
    if isinstance(chunks, int):
        if n % chunks:
            raise ShapeError(
                f"chunk: {chunks} chunks do not divide dim {i + 1} of {batched(x)} (size {n})",
                help=f"a count among the divisors of {n}, or a list of sizes adding up to {n}",
                code=E311,
            )
        sizes = [n // chunks] * chunks
    else:
        sizes = list(chunks)
        if sum(sizes) != n:
            raise ShapeError(
                f"chunk: sizes {_list_text(sizes)} add up to {sum(sizes)}, not dim {i + 1}'s {n} of {batched(x)}",
                help=f"sizes adding up to {n}",
                code=E311,
            )
    if not -len(sizes) <= a["index"] < len(sizes):
        raise ShapeError(
            f"chunk: index {a['index']} is out of range for {len(sizes)} chunks of dim {i + 1} of {batched(x)}",
            help=f"an index from 0 to {len(sizes) - 1}",
            code=E313,
        )
    return x[:i] + (sizes[a["index"]],) + x[i + 1 :]


def _chunk_module(a: Attrs, x: Shape, inplace: bool) -> Any:
    from cnnspec.layers.nn import Chunk

    return Chunk(a.chunks, a.index, a.dim)


CHUNK = LayerKind(
    name="chunk",
    doc="One part of a split (torch.chunk, or torch.split with sizes): a branch that takes its own part, "
    "as ShuffleNet's `x1, x2 = x.chunk(2, dim=1)`.",
    args=(
        Arg("chunks", count_or_sizes, doc="a number of equal parts, or a list of sizes"),
        Arg("index", any_int, doc="which part"),
        Arg("dim", any_int, 1),
    ),
    shape=_chunk_shape,
    module=_chunk_module,
    saves=SAVES_NOTHING,
    view=True,
    receptive=_same_layout,
    label=lambda a: f"chunk {a['index']} of {a['chunks']}",
    category="reshape",
    lowers_to="torch.chunk / torch.split, [index] (cnnspec.layers.nn.Chunk)",
)

# ----------------------------------------------------- channel shuffle


def _shuffle_shape(a: Attrs, x: Shape) -> Shape:
    if len(x) < 2:
        raise ShapeError(
            f"channel_shuffle needs channels and positions (C×H×W) but gets flat features of size {shape_text(x)}",
            code=E304,
        )
    if x[0] % a["groups"]:
        raise ShapeError(
            f"channel_shuffle: {a['groups']} groups do not divide the {x[0]} channels of {shape_text(x)}",
            help=f"choose groups among the divisors of {x[0]}",
            code=E305,
        )
    return x


CHANNEL_SHUFFLE = LayerKind(
    name="channel_shuffle",
    doc="Interleaves the channels of its groups (nn.ChannelShuffle, ShuffleNet).",
    args=(Arg("groups", positive_int),),
    shape=_shuffle_shape,
    module=lambda a, x, inplace: _nn().ChannelShuffle(a.groups),
    saves=SAVES_NOTHING,
    receptive=_same_layout,
    label=lambda a: f"channel_shuffle {a['groups']}",
    category="reshape",
    lowers_to="nn.ChannelShuffle",
)

# ------------------------------------------------------------ upsample


def _upsample_shape(a: Attrs, x: Shape) -> Shape:
    _need_rank3("upsample", x)
    c, h, w = x
    if a["size"] is not None:
        if a["scale"] is not None:
            raise ShapeError(
                "upsample: give a scale or a size, not both",
                help="size = [h, w] fixes the output; scale multiplies the input's",
                code=E212,
            )
        return (c, *a["size"])
    s = 2.0 if a["scale"] is None else a["scale"]
    return (c, math.floor(h * s), math.floor(w * s))


def _upsample_module(a: Attrs, x: Shape, inplace: bool) -> Any:
    scale = None if a.size is not None else (2.0 if a.scale is None else a.scale)
    return _nn().Upsample(size=a.size, scale_factor=scale, mode=a.mode, align_corners=a.align_corners)


def _upsample_shape_checked(a: Attrs, x: Shape) -> Shape:
    if a["align_corners"] is not None and a["mode"] == "nearest":
        raise ShapeError(
            'upsample: align_corners applies to mode "bilinear" or "bicubic", not "nearest"',
            help="leave align_corners out for nearest",
            code=E212,
        )
    y = _upsample_shape(a, x)
    if y[1] < 1 or y[2] < 1:
        raise ShapeError(
            f"upsample: scale {a['scale']} takes {shape_text(x)} to {shape_text(y)}",
            help="a scale that leaves at least one row and column",
            code=E301,
        )
    return y


UPSAMPLE = LayerKind(
    name="upsample",
    doc="Resizes a feature map by a scale or to a size (nn.Upsample).",
    args=(
        Arg("scale", optional(positive_number), None, doc="the factor; 2 unless a size is given"),
        Arg("size", optional(pair(positive_int)), None, doc="the output [h, w]"),
        Arg("mode", choice("nearest", "bilinear", "bicubic"), "nearest"),
        Arg("align_corners", optional(boolean), None, doc="bilinear and bicubic only"),
    ),
    shape=_upsample_shape_checked,
    module=_upsample_module,
    saves=SAVES_NOTHING,  # the backward needs only the sizes
    receptive=rf_undefined,  # positions no longer lie on a grid of whole input pixels
    label=lambda a: f"upsample {a['mode']}",
    category="pool",
    lowers_to="nn.Upsample",
)

# ------------------------------------------------------ conv_transpose


def _convt_shape(a: Attrs, x: Shape) -> Shape:
    _need_rank3("conv_transpose", x)
    cin, h, w = x
    groups, out = a["groups"], a["out"]
    for what, n in (("input", cin), ("output", out)):
        if n % groups:
            raise ShapeError(
                f"conv_transpose: groups={groups} does not divide {n} {what} channels",
                help=f"choose groups among the divisors of {n}",
                code=E305,
            )
    size = []
    for hw, k, s, p, op, d in zip(
        (h, w), a["kernel"], a["stride"], a["padding"], a["output_padding"], a["dilation"], strict=True
    ):
        if op >= max(s, d):
            raise ShapeError(
                f"conv_transpose: output_padding {op} must be smaller than the stride {s} or the dilation {d}",
                help="output_padding picks one of the stride's possible output sizes",
                code=E306,
            )
        size.append((hw - 1) * s - 2 * p + d * (k - 1) + op + 1)
    if min(size) < 1:
        raise ShapeError(
            f"conv_transpose: padding {_list_text(a['padding'])} leaves no output of {shape_text(x)} "
            f"({size[0]}×{size[1]})",
            help="less padding",
            code=E301,
        )
    return (out, size[0], size[1])


def _convt_count(a: Attrs, x: Shape) -> tuple[int, int]:
    kh, kw = a["kernel"]
    return (x[0] * (a["out"] // a["groups"]) * kh * kw + (a["out"] if a["bias"] else 0), 0)


def _convt_module(a: Attrs, x: Shape, inplace: bool) -> Any:
    return _nn().ConvTranspose2d(
        x[0],
        a.out,
        a.kernel,
        stride=a.stride,
        padding=a.padding,
        output_padding=a.output_padding,
        groups=a.groups,
        bias=a.bias,
        dilation=a.dilation,
    )


def _convt_label(a: Attrs) -> str:
    k, s = a["kernel"], a["stride"]
    text = f"convT {k[0]}×{k[1]}, {a['out']}"
    return text + (f", ×{s[0] if s[0] == s[1] else f'{s[0]}×{s[1]}'}" if s != (1, 1) else "")


CONV_TRANSPOSE = LayerKind(
    name="conv_transpose",
    weight_dims=4,
    doc="2-d transposed convolution (nn.ConvTranspose2d), the upsampling of decoders.",
    args=(
        Arg("out", positive_int, doc="output channels"),
        Arg("kernel", pair(positive_int)),
        Arg("stride", pair(positive_int), 1),
        Arg("padding", pair(nonneg_int), 0),
        Arg("output_padding", pair(nonneg_int), 0, doc="smaller than the stride or the dilation"),
        Arg("groups", positive_int, 1),
        Arg("bias", boolean, True),
        Arg("dilation", pair(positive_int), 1),
    ),
    shape=_convt_shape,
    count=_convt_count,
    # Each input element is multiplied into a kernel's worth of outputs of its group.
    macs=lambda a, x, y: math.prod(x) * (a["out"] // a["groups"]) * a["kernel"][0] * a["kernel"][1],
    module=_convt_module,
    receptive=rf_undefined,  # outputs interleave: no whole-pixel grid
    label=_convt_label,
    category="conv",
    lowers_to="nn.ConvTranspose2d",
)


#: The tensor ops, in the order the docs list them (after the layers of cnnspec.layers.builtin).
TENSOR: tuple[LayerKind, ...] = (
    PERMUTE, RESHAPE, TRANSPOSE, SELECT, SLICE, PAD, ROLL, MEAN, CHUNK, CHANNEL_SHUFFLE, UPSAMPLE, CONV_TRANSPOSE,
)  # fmt: skip
