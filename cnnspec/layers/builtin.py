"""The built-in layer vocabulary: one LayerKind per layer, all of them in BUILTIN.

MAC convention: one MAC is one multiply-add of a convolution or a linear
layer (bias additions are not counted). Normalisation, activations, pooling
and joins cost 0 MACs here; docs/analysis.md lists what other tools count.
"""

from __future__ import annotations

import math
from typing import Any

from cnnspec.diagnostics.codes import E303, E305, E306, E310
from cnnspec.layers.attention import ATTENTION, WINDOW_ATTENTION
from cnnspec.layers.dims import dim_index, need_rank
from cnnspec.layers.kind import (
    F32,
    I64,
    SAVES_NOTHING,
    SAVES_OUTPUT,
    Arg,
    Attrs,
    LayerKind,
    Saves,
    Shape,
    ShapeError,
    Window,
    any_int,
    boolean,
    choice,
    nonneg_int,
    number,
    optional,
    padding,
    pair,
    positive_int,
    positive_number,
    probability,
    rf_adaptive,
    rf_undefined,
    rf_whole,
    rf_window,
    shape_text,
)
from cnnspec.layers.param import PARAM
from cnnspec.layers.tensor import TENSOR, count_or_sizes


def _nn() -> Any:
    import torch.nn

    return torch.nn


def _need_map(kind: str, x: Shape) -> None:
    if len(x) != 3:  # words for the refusal only: this runs for every conv of a check
        got = f"flat features of size {shape_text(x)}" if len(x) == 1 else f"a {len(x)}-d {shape_text(x)}"
        need_rank(kind, x, 3, "a C×H×W feature map", got=got,
                  help="move this layer before `flatten`, or use a layer for flat inputs")


def _same(a: Attrs, x: Shape) -> Shape:
    return x


def _pair_text(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"[{p[0]}, {p[1]}]"


def _window_out(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int | None:
    """The output size of one dimension, or None when the window does not fit."""
    eff = d * (k - 1) + 1
    span = size + 2 * p
    if span < eff:
        return None
    if ceil:
        out = -(-(span - eff) // s) + 1
        # The last window must start inside the input or the left padding.
        if (out - 1) * s >= size + p:
            out -= 1
        return out
    return (span - eff) // s + 1


def _window_shape(a: Attrs, x: Shape, kind: str, ceil: bool = False, dilation: tuple[int, int] = (1, 1)) -> Shape:
    _need_map(kind, x)
    c, h, w = x
    k, s, p = a["kernel"], a["stride"], a["padding"]
    if p == "same":
        return (c, h, w)
    if p == "valid":
        p = (0, 0)
    oh = _window_out(h, k[0], s[0], p[0], dilation[0], ceil)
    ow = _window_out(w, k[1], s[1], p[1], dilation[1], ceil)
    if oh is None or ow is None:
        what = "kernel" if kind == "conv" else "window"
        dil = f", dilation {_pair_text(dilation)}" if dilation != (1, 1) else ""
        notes: list[str] = []
        for dim, size, kk, pp, dd in (("height", h, k[0], p[0], dilation[0]), ("width", w, k[1], p[1], dilation[1])):
            eff = dd * (kk - 1) + 1
            if size + 2 * pp < eff:
                ktext = f"the {what}'s {kk}" if dd == 1 else f"the dilated {what}'s {eff}"
                notes.append(f"{dim}: {size} + 2×{pp} padding = {size + 2 * pp}, less than {ktext}")
        if len(notes) == 2 and notes[0].split(": ", 1)[1] == notes[1].split(": ", 1)[1]:
            notes = ["height and width: " + notes[0].split(": ", 1)[1]]
        raise ShapeError(
            f"{'' if kind == 'conv' else kind + ': '}a {k[0]}×{k[1]} {what}{dil} with padding {_pair_text(p)} "
            f"does not fit the {h}×{w} input",
            help="use a smaller kernel or more padding, or check the input size with --input",
            notes=notes,
        )
    return (c, oh, ow)


def _kernel(v: Any) -> str:
    return f"{v[0]}×{v[1]}"


def _pair_label(v: Any) -> str:
    return str(v[0]) if v[0] == v[1] else f"{v[0]}×{v[1]}"


def _conv_label(a: Attrs) -> str:
    """The way papers label a conv box: "conv 3×3, 64, /2"."""
    parts = [f"conv {_kernel(a['kernel'])}", str(a["out"])]
    if _pair_label(a["stride"]) != "1":
        parts.append(f"/{_pair_label(a['stride'])}")
    if a["groups"] != 1:
        parts.append(f"g{a['groups']}")
    if _pair_label(a["dilation"]) != "1":
        parts.append(f"d{_pair_label(a['dilation'])}")
    return ", ".join(parts)


def _pool_label(kind: str) -> Any:
    def label(a: Attrs) -> str:
        stride = a.get("stride") or a["kernel"]
        text = f"{kind} {_kernel(a['kernel'])}"
        return text + (f", /{_pair_label(stride)}" if _pair_label(stride) != "1" else "")

    return label


# ------------------------------------------------------------------- conv


def _divisors(n: int) -> str:
    small = [d for d in range(1, min(n, 10_000) + 1) if n % d == 0]
    return ", ".join(map(str, small[:12])) + (", …" if len(small) > 12 else "")


def _conv_shape(a: Attrs, x: Shape) -> Shape:
    _need_map("conv", x)
    cin = x[0]
    out, groups = a["out"], a["groups"]  # items, not attributes: this runs once per conv of a check
    if cin % groups:
        raise ShapeError(
            f"groups={groups} does not divide {cin} input channels",
            help=f"choose groups among the divisors of {cin}: {_divisors(cin)}",
            code=E305,
        )
    if out % groups:
        raise ShapeError(
            f"groups={groups} does not divide {out} output channels",
            help=f"choose groups among the divisors of {out}: {_divisors(out)}",
            code=E305,
        )
    if a["padding"] == "same" and a["stride"] != (1, 1):
        raise ShapeError(
            f'padding "same" needs stride 1, but the stride is {_pair_text(a["stride"])}',
            help="give the padding as a number instead, e.g. padding = kernel // 2",
            code=E306,
        )
    _, h, w = _window_shape(a, x, "conv", dilation=a["dilation"])
    return (out, h, w)


def _conv_count(a: Attrs, x: Shape) -> tuple[int, int]:
    kh, kw = a["kernel"]
    out = a["out"]
    return (out * (x[0] // a["groups"]) * kh * kw + (out if a["bias"] else 0), 0)


def _conv_macs(a: Attrs, x: Shape, y: Shape) -> int:
    kh, kw = a["kernel"]
    return y[0] * y[1] * y[2] * (x[0] // a["groups"]) * kh * kw


def _conv_module(a: Attrs, x: Shape, inplace: bool) -> Any:
    return _nn().Conv2d(
        x[0], a.out, a.kernel, stride=a.stride, padding=a.padding, dilation=a.dilation, groups=a.groups, bias=a.bias
    )


CONV = LayerKind(
    name="conv",
    weight_dims=4,
    doc="2-d convolution (nn.Conv2d); input channels come from the input shape.",
    args=(
        Arg("out", positive_int, doc="output channels"),
        Arg("kernel", pair(positive_int), doc="kernel size, an int or [h, w]"),
        Arg("stride", pair(positive_int), 1),
        Arg("padding", padding, 0, doc='an int, [h, w], "same" or "valid"'),
        Arg("dilation", pair(positive_int), 1),
        Arg("groups", positive_int, 1, doc="groups; groups = in.channels is depthwise"),
        Arg("bias", boolean, True),
    ),
    shape=_conv_shape,
    count=_conv_count,
    macs=_conv_macs,
    module=_conv_module,
    label=_conv_label,
    category="conv",
    receptive=rf_window,
    lowers_to="nn.Conv2d",
)

# ----------------------------------------------------------------- linear


def _linear_shape(a: Attrs, x: Shape) -> Shape:
    return (*x[:-1], a["out"])


def _last_dim_rf(a: Attrs, x: Any, y: Shape) -> Window | None:
    """Flat features: each output sees what the input sees. Any other rank: the layer mixes along the
    last dimension, a map's width or a channels-last map's channels, which no window describes."""
    return None if len(x) == 1 else rf_undefined(a, x, y)


LINEAR = LayerKind(
    name="linear",
    weight_dims=2,
    doc="Fully connected layer (nn.Linear) on the last dimension: flat features, tokens, channels-last maps.",
    args=(Arg("out", positive_int, doc="output features"), Arg("bias", boolean, True)),
    shape=_linear_shape,
    count=lambda a, x: (x[-1] * a.out + (a.out if a.bias else 0), 0),
    macs=lambda a, x, y: math.prod(x) * a["out"],
    module=lambda a, x, inplace: _nn().Linear(x[-1], a.out, bias=a.bias),
    receptive=_last_dim_rf,
    label=lambda a: f"linear {a['out']}",
    category="linear",
    lowers_to="nn.Linear",
)

# ---------------------------------------------------------- normalisation


def _bn_module(a: Attrs, x: Shape, inplace: bool) -> Any:
    cls = _nn().BatchNorm2d if len(x) == 3 else _nn().BatchNorm1d
    return cls(x[0], eps=a.eps, momentum=a.momentum, affine=a.affine)


BATCHNORM = LayerKind(
    name="batchnorm",
    weight_dims=1,
    doc="Batch normalisation, 2-d on feature maps and 1-d on flat features.",
    args=(Arg("eps", positive_number, 1e-5), Arg("momentum", probability, 0.1), Arg("affine", boolean, True)),
    shape=_same,
    count=lambda a, x: (2 * x[0] if a["affine"] else 0, 2 * x[0] + 1),
    module=_bn_module,
    saves=lambda a, x, y, device: ((0,), 0, 2 * x[0] * F32),  # save_mean and save_invstd, per channel
    category="norm",
    lowers_to="nn.BatchNorm2d (nn.BatchNorm1d on flat features)",
)


def _gn_shape(a: Attrs, x: Shape) -> Shape:
    if x[0] % a.groups:
        raise ShapeError(
            f"groupnorm: {a.groups} groups do not divide {x[0]} channels",
            help=f"choose groups among the divisors of {x[0]}: {_divisors(x[0])}",
            code=E305,
        )
    return x


GROUPNORM = LayerKind(
    name="groupnorm",
    weight_dims=1,
    doc="Group normalisation (nn.GroupNorm) over channel groups.",
    args=(Arg("groups", positive_int), Arg("eps", positive_number, 1e-5), Arg("affine", boolean, True)),
    shape=_gn_shape,
    count=lambda a, x: (2 * x[0] if a.affine else 0, 0),
    module=lambda a, x, inplace: _nn().GroupNorm(a.groups, x[0], eps=a.eps, affine=a.affine),
    saves=lambda a, x, y, device: ((0,), 2 * a["groups"] * F32, 0),  # mean and rstd per sample and group
    label=lambda a: f"groupnorm {a['groups']}",
    category="norm",
    lowers_to="nn.GroupNorm",
)


def _ln_shape(a: Attrs, x: Shape) -> Shape:
    if a["over"] == "channels":
        _need_map("layernorm over channels", x)
    return x


def _ln_normalized(a: Attrs, x: Shape) -> Shape:
    """The normalised shape: all of x, its last dimension, or its channels."""
    return tuple(x) if a["over"] == "all" else (x[-1],) if a["over"] == "last" else (x[0],)


def _ln_module(a: Attrs, x: Shape, inplace: bool) -> Any:
    if a.over == "channels":
        from cnnspec.layers.nn import LayerNorm2d

        return LayerNorm2d(x[0], eps=a.eps, elementwise_affine=a.affine)
    return _nn().LayerNorm(list(_ln_normalized(a, x)), eps=a.eps, elementwise_affine=a.affine)


def _ln_saves(a: Attrs, x: Shape, y: Shape, device: str) -> Saves:
    # Its input, and a mean and rstd for each group normalised: per sample, per position, per token.
    groups = math.prod(x) // math.prod(_ln_normalized(a, x))
    return ((0,), 2 * groups * F32, 0)


def _ln_rf(a: Attrs, x: Any, y: Shape) -> Window | None:
    return _last_dim_rf(a, x, y) if a["over"] == "last" else None


LAYERNORM = LayerKind(
    name="layernorm",
    doc="Layer normalisation (nn.LayerNorm) over all of C×H×W (or the flat features), over the last dimension "
    '(over = "last": tokens, channels-last maps), or over the channels at each position of a C×H×W map '
    '(over = "channels": ConvNeXt\'s LayerNorm2d).',
    args=(
        Arg("eps", positive_number, 1e-5),
        Arg("affine", boolean, True),
        Arg("over", choice("all", "last", "channels"), "all", doc='"all", "last" or "channels"'),
    ),
    shape=_ln_shape,
    count=lambda a, x: (2 * math.prod(_ln_normalized(a, x)) if a.affine else 0, 0),
    module=_ln_module,
    saves=_ln_saves,
    receptive=_ln_rf,
    category="norm",
    lowers_to="nn.LayerNorm (over channels: cnnspec.layers.nn.LayerNorm2d)",
)


def _lrn_shape(a: Attrs, x: Shape) -> Shape:
    _need_map("lrn", x)
    return x


def _lrn_saves(a: Attrs, x: Shape, y: Shape, device: str) -> Saves:
    # F.local_response_norm: x·x keeps x; the channel-padded square (C+n−1)×H×W is kept by
    # avg_pool3d; pow keeps its input; the division keeps x and the divisor.
    c, h, w = x
    n = a["size"]
    return (0,), ((c + n - 1) * h * w + 2 * c * h * w) * F32, 0


LRN = LayerKind(
    name="lrn",
    doc="Local response normalisation across channels (AlexNet 2012, GoogLeNet 2014).",
    args=(
        Arg("size", positive_int),
        Arg("alpha", number, 1e-4),
        Arg("beta", number, 0.75),
        Arg("k", number, 1.0),
    ),
    shape=_lrn_shape,
    module=lambda a, x, inplace: _nn().LocalResponseNorm(a.size, alpha=a.alpha, beta=a.beta, k=a.k),
    saves=_lrn_saves,
    label=lambda a: f"lrn {a['size']}",
    category="norm",
    lowers_to="nn.LocalResponseNorm",
)

# ------------------------------------------------------------ activations


def _activation(
    name: str,
    cls: str,
    doc: str,
    args: tuple[Arg, ...] = (),
    inplace: bool = False,
    saves: Saves | None = None,
    view: bool = False,
    category: str = "activation",
) -> LayerKind:
    def build(a: Attrs, x: Shape, in_place: bool) -> Any:
        kwargs = {arg.name: a[arg.name] for arg in args}
        if inplace:
            kwargs["inplace"] = in_place
        return getattr(_nn(), cls)(**kwargs)

    rule = {"saves": saves} if saves is not None else {}  # else the default: its input
    return LayerKind(
        name=name, doc=doc, args=args, shape=_same, module=build, inplace=inplace, view=view,
        category=category, lowers_to=f"nn.{cls}", **rule,
    )  # fmt: skip


RELU = _activation("relu", "ReLU", "max(0, x)", inplace=True, saves=SAVES_OUTPUT)
RELU6 = _activation("relu6", "ReLU6", "min(max(0, x), 6) (MobileNet)", inplace=True, saves=SAVES_OUTPUT)
GELU = _activation(
    "gelu", "GELU", "Gaussian error linear unit", args=(Arg("approximate", choice("none", "tanh"), "none"),)
)


SILU = _activation("silu", "SiLU", "x·sigmoid(x), a.k.a. swish (EfficientNet)", inplace=True)
SIGMOID = _activation("sigmoid", "Sigmoid", "logistic sigmoid", saves=SAVES_OUTPUT)
TANH = _activation("tanh", "Tanh", "hyperbolic tangent", saves=SAVES_OUTPUT)
HARDSWISH = _activation("hardswish", "Hardswish", "MobileNetV3's hard swish", inplace=True)
HARDSIGMOID = _activation("hardsigmoid", "Hardsigmoid", "MobileNetV3's hard sigmoid", inplace=True)
IDENTITY = _activation(
    "identity", "Identity", "passes its input through", saves=SAVES_NOTHING, view=True, category=""
)


def _leaky(a: Attrs, x: Shape, inplace: bool) -> Any:
    return _nn().LeakyReLU(negative_slope=a.slope)


LEAKY_RELU = LayerKind(
    name="leaky_relu",
    doc="Leaky ReLU: x for x > 0, slope·x otherwise.",
    args=(Arg("slope", number, 0.01),),
    shape=_same,
    module=_leaky,
    category="activation",
    lowers_to="nn.LeakyReLU",
)


SOFTMAX = LayerKind(
    name="softmax",
    doc="Softmax over channels (dim 1).",
    shape=_same,
    module=lambda a, x, inplace: _nn().Softmax(dim=1),
    saves=SAVES_OUTPUT,
    lowers_to="nn.Softmax(dim=1)",
)

# ---------------------------------------------------------------- pooling


def _argmax_saves(a: Attrs, x: Shape, y: Shape, device: str) -> Saves:
    return (0,), math.prod(y) * I64, 0  # its input, and the argmax indices


def _pool_args(with_dilation: bool) -> tuple[Arg, ...]:
    base = (
        Arg("kernel", pair(positive_int)),
        Arg("stride", optional(pair(positive_int)), None, doc="defaults to the kernel size"),
        Arg("padding", pair(nonneg_int), 0),
    )
    extra = (Arg("dilation", pair(positive_int), 1),) if with_dilation else ()
    return base + extra + (Arg("ceil_mode", boolean, False),)


def _pool_attrs(a: Attrs) -> Attrs:
    return Attrs(a, stride=a.stride or a.kernel)


def _pool_shape(kind: str, with_dilation: bool) -> Any:
    def shape(a: Attrs, x: Shape) -> Shape:
        b = _pool_attrs(a)
        for i in (0, 1):
            if b.padding[i] * 2 > b.kernel[i]:
                raise ShapeError(
                    f"{kind}: padding {b.padding[i]} is more than half the kernel {b.kernel[i]}",
                    help="torch only pads pooling windows by at most half the kernel",
                    code=E306,
                )
        return _window_shape(b, x, kind, ceil=b.ceil_mode, dilation=b.dilation if with_dilation else (1, 1))

    return shape


MAXPOOL = LayerKind(
    name="maxpool",
    doc="Max pooling (nn.MaxPool2d); stride defaults to the kernel.",
    args=_pool_args(True),
    shape=_pool_shape("maxpool", True),
    module=lambda a, x, inplace: _nn().MaxPool2d(
        a.kernel, stride=a.stride or a.kernel, padding=a.padding, dilation=a.dilation, ceil_mode=a.ceil_mode
    ),
    saves=_argmax_saves,
    label=_pool_label("maxpool"),
    category="pool",
    receptive=rf_window,
    lowers_to="nn.MaxPool2d",
)


AVGPOOL = LayerKind(
    name="avgpool",
    doc="Average pooling (nn.AvgPool2d); stride defaults to the kernel.",
    args=_pool_args(False) + (Arg("count_include_pad", boolean, True),),
    shape=_pool_shape("avgpool", False),
    module=lambda a, x, inplace: _nn().AvgPool2d(
        a.kernel,
        stride=a.stride or a.kernel,
        padding=a.padding,
        ceil_mode=a.ceil_mode,
        count_include_pad=a.count_include_pad,
    ),
    label=_pool_label("avgpool"),
    category="pool",
    receptive=rf_window,
    lowers_to="nn.AvgPool2d",
)


def _adaptive_shape(kind: str) -> Any:
    def shape(a: Attrs, x: Shape) -> Shape:
        _need_map(kind, x)
        return (x[0], *a.size)

    return shape


ADAPTIVE_AVGPOOL = LayerKind(
    name="adaptive_avgpool",
    doc="Adaptive average pooling to a fixed output size (1 gives global pooling).",
    args=(Arg("size", pair(positive_int)),),
    shape=_adaptive_shape("adaptive_avgpool"),
    module=lambda a, x, inplace: _nn().AdaptiveAvgPool2d(a.size),
    # Global pooling runs as mean(), which keeps only sizes; other sizes keep the input.
    saves=lambda a, x, y, device: (() if y[1:] == (1, 1) else (0,), 0, 0),
    label=lambda a: f"adaptive_avgpool {_kernel(a['size'])}",
    category="pool",
    receptive=rf_adaptive,
    lowers_to="nn.AdaptiveAvgPool2d",
)


ADAPTIVE_MAXPOOL = LayerKind(
    name="adaptive_maxpool",
    doc="Adaptive max pooling to a fixed output size.",
    args=(Arg("size", pair(positive_int)),),
    shape=_adaptive_shape("adaptive_maxpool"),
    module=lambda a, x, inplace: _nn().AdaptiveMaxPool2d(a.size),
    saves=_argmax_saves,
    label=lambda a: f"adaptive_maxpool {_kernel(a['size'])}",
    category="pool",
    receptive=rf_adaptive,
    lowers_to="nn.AdaptiveMaxPool2d",
)

# ----------------------------------------------------------- regularisers


def _dropout_saves(a: Attrs, x: Shape, y: Shape, device: str) -> Saves:
    if not a["p"]:
        return SAVES_NOTHING
    return (), math.prod(x) * (1 if device == "cuda" else F32), 0  # the mask: bool on CUDA, float on CPU


DROPOUT = LayerKind(
    name="dropout",
    doc="Dropout with probability p (identity in eval mode).",
    args=(Arg("p", probability, 0.5, varies="rates"),),
    shape=_same,
    module=lambda a, x, inplace: _nn().Dropout(p=a.p),
    saves=_dropout_saves,
    label=lambda a: f"dropout {a.get('p')}",
    category="regulariser",
    lowers_to="nn.Dropout",
)


def _stochastic_depth(a: Attrs, x: Shape, inplace: bool) -> Any:
    from cnnspec.layers.nn import StochasticDepth

    return StochasticDepth(a.p, a.mode)


STOCHASTIC_DEPTH = LayerKind(
    name="stochastic_depth",
    doc="Drops the whole sample's path with probability p in training (Huang et al. 2016).",
    args=(Arg("p", probability, varies="rates"), Arg("mode", choice("row", "batch"), "row")),
    shape=_same,
    module=_stochastic_depth,
    # x * noise, with one noise value per sample ("row") or one for the batch.
    # The noise it multiplies by: one float per sample ("row") or per batch; none at p = 0, where
    # torchvision's (and cnnspec's) StochasticDepth returns its input (ConvNeXt's first block).
    saves=lambda a, x, y, device: ((), 0, 0) if a["p"] == 0 else ((), F32, 0) if a["mode"] == "row" else ((), 0, F32),
    label=lambda a: f"stochastic_depth {a.get('p')}",
    # No category: drawn white, as before the table held the colours (dropout's grey would change
    # every EfficientNet diagram).
    lowers_to="cnnspec.layers.nn.StochasticDepth",
)

# ---------------------------------------------------------------- reshape


def _flatten_shape(a: Attrs, x: Shape) -> Shape:
    if a["start"] == 1 and a["end"] == -1:
        return (math.prod(x),)
    s, e = dim_index("flatten", a["start"], x, "start"), dim_index("flatten", a["end"], x, "end")
    if s > e:
        raise ShapeError(
            f"flatten: start {a['start']} comes after end {a['end']} in the input B×{shape_text(x)}",
            help="start at or before end: flatten(2) merges the height and width of a C×H×W map",
            code=E310,
        )
    return (*x[:s], math.prod(x[s : e + 1]), *x[e + 1 :])


def _flatten_rf(a: Attrs, x: Any, y: Shape) -> Window | None:
    if a["start"] == 1 and a["end"] == -1:
        return rf_whole(a, x, y)
    return None if tuple(x) == tuple(y) else rf_undefined(a, x, y)


def _flatten_dims_from(a: Attrs, x: Shape) -> tuple[int | None, ...]:
    s, e = dim_index("flatten", a["start"], x, "start"), dim_index("flatten", a["end"], x, "end")
    return (*range(s), s if s == e else None, *range(e + 1, len(x)))


FLATTEN = LayerKind(
    name="flatten",
    doc="Flattens C×H×W into C·H·W features (torch.flatten from dim 1), or the dims start to end: "
    "flatten(2) turns a C×H×W map into C×(H·W).",
    args=(Arg("start", any_int, 1), Arg("end", any_int, -1)),
    shape=_flatten_shape,
    function="torch.flatten",
    function_args=lambda a: (a["start"],) if a["end"] == -1 else (a["start"], a["end"]),
    saves=SAVES_NOTHING,
    view=True,
    category="reshape",
    receptive=_flatten_rf,
    dims_from=_flatten_dims_from,
    label=lambda a: "flatten" if (a["start"], a["end"]) == (1, -1) else f"flatten {a['start']}..{a['end']}",
    lowers_to="torch.flatten(x, start, end)",
)

# ---------------------------------------------------------------- markers

#: `cut`: a pipeline boundary the planner must keep (cnnspec.analysis.pipeline). The elaborator
#: records it on the graph and adds no node, so it takes no position among its siblings and the
#: module tree, state_dict and every figure of the spec are those of the spec without it.
CUT = LayerKind(
    name="cut",
    doc="Marks a pipeline stage boundary after the previous layer (`check --pipeline N`); computes nothing.",
    shape=_same,
    lowers_to="nothing (a pipeline stage boundary)",
)

# ------------------------------------------------------------------ joins


def _branch(a: Attrs, i: int) -> str:
    """A branch's name for messages: its label (branch1) when it has one, else its position."""
    names = a.get("branches") or ()
    return names[i] if i < len(names) and names[i] else f"branch {i + 1}"


def _branches_differ(kind: str, a: Attrs, i: int, s: Shape, first: Shape, help: str | None = None) -> ShapeError:
    """E303: branch i of a join gives s where its first branch gives ``first``."""
    return ShapeError(
        f"{kind}: {_branch(a, i)} gives {shape_text(s)} but {_branch(a, 0)} gives {shape_text(first)}",
        help=help,
        code=E303,
    )


def _add_shape(a: Attrs, xs: tuple[Shape, ...]) -> Shape:
    first = xs[0]
    for i, s in enumerate(xs[1:], start=1):
        if s != first:
            raise _branches_differ("add", a, i, s, first, help="every branch of `add` must give the same shape")
    return first


def _broadcast(a: Attrs, xs: tuple[Shape, ...]) -> Shape:
    out = list(xs[0])
    for i, s in enumerate(xs[1:], start=1):
        if len(s) != len(out):
            raise _branches_differ("mul", a, i, s, tuple(out))
        for d, (p, q) in enumerate(zip(out, s, strict=True)):
            if p != q and 1 not in (p, q):
                raise ShapeError(
                    f"mul: {_branch(a, i)} gives {shape_text(s)}, "
                    f"which does not broadcast against {shape_text(tuple(out))}",
                    help="each dimension must be equal, or 1 in one of the branches",
                    code=E303,
                )
            out[d] = max(p, q)
    return tuple(out)


_DIMS = ("channels", "height", "width")


def _concat_shape(a: Attrs, xs: tuple[Shape, ...]) -> Shape:
    first = xs[0]
    for i, s in enumerate(xs[1:], start=1):
        if len(s) != len(first):
            raise _branches_differ(
                "concat", a, i, s, first,
                help="concat joins feature maps along channels, or flat features with flat features",
            )
    dim = a["dim"]
    along = dim_index("concat", dim, first)
    for i, s in enumerate(xs[1:], start=1):
        for d in range(len(first)):
            if d != along and s[d] != first[d]:
                rank3 = len(first) == 3
                raise ShapeError(
                    f"concat branches disagree in {_DIMS[d] if rank3 else f'dim {d + 1}'}: "
                    f"{first[d]} ({_branch(a, 0)}) and {s[d]} ({_branch(a, i)})",
                    help=f"concat joins along dim {dim}; the other dims must agree"
                    if along != 0
                    else "concat joins along channels; every branch must keep the same height and width"
                    if rank3
                    else "concat joins along dim 1 (channels, or the tokens of a sequence); the other dims must agree",
                    code=E303,
                )
    return (*first[:along], sum(s[along] for s in xs), *first[along + 1 :])


ADD = LayerKind(
    name="add",
    doc="Sums its branches (same shapes).",
    shape=_add_shape,
    function="operator.add",
    # `out += identity`, as torchvision's residual blocks do: no new tensor per block.
    inplace_function="operator.iadd",
    arity="many",
    saves=SAVES_NOTHING,
    category="join",
    lowers_to="a + b + ... (`+=` where nothing else reads a)",
)


MUL = LayerKind(
    name="mul",
    doc="Multiplies its branches elementwise, broadcasting 1-sized dimensions (squeeze-and-excitation).",
    shape=_broadcast,
    function="operator.mul",
    arity="many",
    saves=lambda a, xs, y, device: (tuple(range(len(xs))), 0, 0),  # every operand
    category="join",
    lowers_to="a * b * ...",
)


CONCAT = LayerKind(
    name="concat",
    doc="Concatenates its branches along a dimension, channels by default: "
    "`concat(dim = -1) { ... }` joins channels-last maps (Swin's patch merging).",
    args=(Arg("dim", any_int, 1, doc="torch's dim, the batch included"),),
    shape=_concat_shape,
    function="torch.cat",
    arity="many",
    saves=SAVES_NOTHING,
    category="join",
    takes_list=True,
    function_args=lambda a: (a["dim"],),
    lowers_to="torch.cat([a, b, ...], dim)",
)


SPLIT = LayerKind(
    name="split",
    doc="Hands branch i chunk i of its input along a dimension, then concatenates the branches' outputs "
    "there: ShuffleNet's `x1, x2 = x.chunk(2, dim=1)` then `torch.cat((x1, branch2(x2)), dim=1)`.",
    args=(
        Arg("chunks", count_or_sizes, doc="a number of equal parts (one per branch), or a list of sizes"),
        Arg("dim", any_int, 1, doc="torch's dim, the batch included"),
    ),
    shape=_concat_shape,  # the chunks' own checks are the chunk nodes'
    function="torch.cat",
    arity="many",
    saves=SAVES_NOTHING,
    category="join",
    takes_list=True,
    function_args=lambda a: (a["dim"],),
    branch_input="chunk",
    lowers_to="torch.cat([a(x.chunk(n, dim)[0]), b(x.chunk(n, dim)[1]), ...], dim)",
)


#: Every built-in kind, in the order `cnnspec layers` and the docs list them: the layers above, then
#: the tensor ops (cnnspec.layers.tensor).
BUILTIN: tuple[LayerKind, ...] = (
    CONV, LINEAR, BATCHNORM, GROUPNORM, LAYERNORM, LRN,
    RELU, RELU6, GELU, SILU, SIGMOID, TANH, HARDSWISH, HARDSIGMOID, IDENTITY, LEAKY_RELU, SOFTMAX,
    MAXPOOL, AVGPOOL, ADAPTIVE_AVGPOOL, ADAPTIVE_MAXPOOL, DROPOUT, STOCHASTIC_DEPTH, FLATTEN, CUT, ADD, MUL, CONCAT,
    SPLIT,
    ATTENTION, WINDOW_ATTENTION, PARAM,
    *TENSOR,
)  # fmt: skip
