"""What one entry of the layer table holds: LayerKind, its arguments and their checkers.

An entry says which arguments the layer takes, how it maps an input shape
to an output shape, how many parameters and buffers it owns, how many MACs
it costs, what autograd keeps of it for backward, the window it slides (for
the receptive field), its diagram label and category, and which torch module
or function implements it. Shapes exclude the batch dimension: (C, H, W) for
feature maps, (F,) for flat features. Nothing here imports torch at import
time; torch is imported when a module is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cnnspec.diagnostics.codes import E211, E212, E301

Shape = tuple[int, ...]


class ShapeError(Exception):
    """A layer cannot accept its input shape; the message shows the arithmetic."""

    def __init__(
        self, message: str, help: str | None = None, code: str = E301, notes: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.help = help
        self.code = code
        self.notes = list(notes)


class ArgError(Exception):
    """An argument value has the wrong type or is out of range."""

    def __init__(self, message: str, code: str = E211) -> None:
        super().__init__(message)
        self.code = code


class Attrs(dict[str, Any]):
    """A layer's bound arguments, readable as attributes (a.kernel)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


REQUIRED: Any = object()


@dataclass(frozen=True)
class Arg:
    """One argument of a layer: its name, how a value is checked, its default.

    varies: for an argument that changes neither the layer's shapes nor its
    parameters nor its compute, what a fold calls its values: consecutive block
    instances that differ only in such values (and channel counts) fold as one,
    marked "rates vary" for dropout's p (EfficientNet's stochastic depth grows
    from block to block), "shifts vary" for window attention's shift (Swin's
    blocks alternate between shifted and plain windows). "": the value counts.
    """

    name: str
    check: Callable[[Any], Any]
    default: Any = REQUIRED
    doc: str = ""
    varies: str = ""

    @property
    def required(self) -> bool:
        """Whether a call must give this argument."""
        return self.default is REQUIRED


def no_params(a: Attrs, x: Any) -> tuple[int, int]:
    """The count rule of a layer without parameters or buffers."""
    return (0, 0)


def no_macs(a: Attrs, x: Any, y: Shape) -> int:
    """The MAC rule of a layer that costs no MACs (the passes skip it without a call)."""
    return 0


#: Bytes per element of the tensors autograd keeps (float32 activations, int64 indices).
F32 = 4
I64 = 8

#: What autograd keeps of a layer for backward: (positions of the inputs whose storage it
#: keeps, -1 for the layer's own output; new bytes per sample; new bytes independent of the
#: batch). A storage kept by several layers counts once (cnnspec.analysis.memory).
Saves = tuple[tuple[int, ...], int, int]
#: Keeps its input and nothing else (conv, linear, most ops): the default.
SAVES_INPUT: Saves = ((0,), 0, 0)
#: Keeps its output: the derivative is written in terms of the result (relu, sigmoid).
SAVES_OUTPUT: Saves = ((-1,), 0, 0)
#: Keeps nothing (add, concat, views).
SAVES_NOTHING: Saves = ((), 0, 0)


Pair = tuple[int, int]
#: A sliding window as the receptive-field pass reads it: (kernel, stride, dilation), each (h, w).
Window = tuple[Pair, Pair, Pair]


def rf_same(a: Attrs, x: Any, y: Shape) -> Window | None:
    """The default receptive-field rule: pointwise, except that a layer turning a feature map
    into flat features (flatten) lets each output see the whole map."""
    if len(x) == 3 and len(y) == 1:
        return rf_whole(a, x, y)
    return None


#: The window a layer past which the receptive field is not defined gives (rf_undefined).
RF_UNDEFINED: Window = ((0, 0), (0, 0), (0, 0))


def rf_undefined(a: Attrs, x: Any, y: Shape) -> Window | None:
    """The receptive field is not defined past this layer: it moves, merges, wraps or resamples the
    positions of a map (permute, reshape, roll, upsample), so no window of input pixels describes it."""
    return RF_UNDEFINED


def rf_whole(a: Attrs, x: Any, y: Shape) -> Window | None:
    """Every output sees the whole input map (global pooling, flatten)."""
    if len(x) != 3:
        return None
    hw = (x[1], x[2])
    return (hw, hw, (1, 1))


def rf_window(a: Attrs, x: Any, y: Shape) -> Window | None:
    """A window given by the layer's kernel, stride (defaulting to the kernel) and dilation arguments."""
    kernel = a["kernel"]
    return (kernel, a.get("stride") or kernel, a.get("dilation") or (1, 1))


def rf_adaptive(a: Attrs, x: Any, y: Shape) -> Window | None:
    """torch's adaptive pooling from x's height and width to y's: its widest window and its stride."""
    kernel, stride = [], []
    for n, m in zip(x[1:], y[1:], strict=True):
        # torch's window i spans [floor(i·n/m), ceil((i+1)·n/m)); the widest is ceil(n/m) (+1 when uneven).
        kernel.append(max(-(-((i + 1) * n) // m) - (i * n) // m for i in range(m)))
        stride.append(max(1, n // m))
    return ((kernel[0], kernel[1]), (stride[0], stride[1]), (1, 1))


#: The families a diagram colours layers by; "" is anything else (drawn white).
CATEGORIES = ("conv", "linear", "pool", "norm", "activation", "regulariser", "reshape", "join", "")


@dataclass(frozen=True)
class LayerKind:
    """Everything cnnspec knows about one kind of layer.

    shape(a, x) -> output shape, raising ShapeError when x does not fit;
    count(a, x) -> (trainable parameters, buffer elements);
    macs(a, x, y) -> multiply-accumulates for one sample;
    module(a, x, inplace) -> a torch nn.Module, or None when the layer is a
    function (then `function` names a torch callable and `function_args`
    gives its extra positional arguments).
    saves: what autograd keeps of the layer for backward, a Saves rule, or
    saves(a, x, y, device) -> Saves where it depends on the arguments or
    shapes (device: "cpu" or "cuda"); view: the output is a view of the
    first input (the same storage).
    For joins (arity "many"), x is the tuple of input shapes.
    inplace: the module may overwrite its input; inplace_function: the form
    of `function` that overwrites its first operand. The backend uses either
    only where autograd keeps nothing of that value and nothing else reads it.
    takes_list: a join whose function takes the list of its branches
    (torch.cat(branches, *function_args)); other joins apply their function
    to two values at a time, left to right.
    receptive(a, x, y) -> the Window the layer slides over its input, or None
    where each output sees what its input sees (rf_same, the default);
    joins take the widest of their branches whatever this rule says.
    label(a) -> the text a diagram box shows ("conv 3×3, 64, /2"), the name
    when None; category: the family a diagram colours it by (CATEGORIES);
    lowers_to: what the torch backend builds, as the docs table shows it.
    weight_dims: how many dimensions the layer's weight has (0: none, or a number
    that follows the input, as layernorm's); `init` rules check against it the
    schemes that need a fan-in and a fan-out.
    dims_from(a, x) -> for each output dim after the batch, the input dim (after the
    batch) it is, or None for a dim made of several or of none; for a layer that moves
    or removes dims (permute, transpose, flatten, select). None, the default: a layer
    that keeps the rank keeps every dim in place, one that changes it keeps none.
    args_from_input(a, x, y) -> arguments worked out from the shapes once the shape rule has
    run, replacing the written ones in the node (reshape's -1 becomes its size), so that every
    later stage reads plain values.
    """

    name: str
    doc: str
    shape: Callable[[Attrs, Any], Shape]
    args: tuple[Arg, ...] = ()
    count: Callable[[Attrs, Any], tuple[int, int]] = no_params
    macs: Callable[[Attrs, Any, Shape], int] = no_macs
    module: Callable[[Attrs, Any, bool], Any] | None = None
    function: str | None = None
    function_args: Callable[[Attrs], tuple[Any, ...]] = lambda a: ()
    inplace: bool = False
    inplace_function: str | None = None
    arity: str = "one"
    takes_list: bool = False
    saves: Saves | Callable[[Attrs, Any, Shape, str], Saves] = SAVES_INPUT
    view: bool = False
    receptive: Callable[[Attrs, Any, Shape], Window | None] = rf_same
    label: Callable[[Attrs], str] | None = None
    category: str = ""
    lowers_to: str = ""
    weight_dims: int = 0
    #: A join that hands each branch its own part of the input: the kind (taking the join's arguments
    #: and `index`) whose node gives branch i its part (split's "chunk"); None: every branch reads it all.
    branch_input: str | None = None
    dims_from: Callable[[Attrs, Shape], tuple[int | None, ...]] | None = None
    args_from_input: Callable[[Attrs, Any, Shape], dict[str, Any]] | None = None

    @property
    def is_join(self) -> bool:
        """Whether the layer joins branches (arity "many"): written `name { branch; branch }`."""
        return self.arity == "many"

    def label_text(self, a: Attrs) -> str:
        """The text a diagram box shows for a layer of this kind with arguments a."""
        return self.label(a) if self.label is not None else self.name

    def signature(self) -> str:
        """The call signature as a user writes it, for error messages: `[name]` is an optional
        argument whose default is worked out from the others (maxpool's stride is its kernel)."""
        parts = [
            a.name if a.required else f"[{a.name}]" if a.default is None else f"{a.name} = {show_value(a.default)}"
            for a in self.args
        ]
        return f"{self.name}({', '.join(parts)})"


def shape_text(shape: Sequence[int]) -> str:
    """A shape as people write it: 64×56×56, or a flat size."""
    return "×".join(str(d) for d in shape)


def show_value(v: Any) -> str:
    """A value as a spec writes it: true, none, "same", 3."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


# -------------------------------------------------------- argument checkers


#: The spec's names of the Python types its values have (bool before int: a bool is an int in Python).
_SPEC_TYPES = ((bool, "bool"), (int, "int"), (float, "float"), (str, "string"), (list, "list"))


def type_name(v: Any) -> str:
    """The spec-level name of a value's type (int, string, list, ...); a Python type's name otherwise."""
    for cls, name in _SPEC_TYPES:
        if isinstance(v, cls):
            return name
    return type(v).__name__


def _typename(v: Any) -> str:
    # "a bool", "an int" for the spec's own types, as the argument messages read.
    name = type_name(v)
    if any(name == spec for _, spec in _SPEC_TYPES):
        return ("an " if name[0] in "aeiou" else "a ") + name
    return name


def as_int(v: Any, what: str = "an int") -> int:
    """v as an int, accepting floats that are whole numbers (e.g. 64 * 1.0)."""
    if isinstance(v, bool):
        raise ArgError(f"expected {what}, got {_typename(v)}")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise ArgError(f"expected {what}, got {_typename(v)} ({v!r})")


def positive_int(v: Any) -> int:
    """An int of at least 1."""
    if type(v) is int and v >= 1:  # nearly every call: a checker runs for each argument of each layer
        return v
    n = as_int(v, "a positive int")
    if n < 1:
        raise ArgError(f"must be at least 1, got {n}", code=E212)
    return n


def nonneg_int(v: Any) -> int:
    """An int of at least 0."""
    if type(v) is int and v >= 0:
        return v
    n = as_int(v, "an int")
    if n < 0:
        raise ArgError(f"must not be negative, got {n}", code=E212)
    return n


def any_int(v: Any) -> int:
    """Any int."""
    return as_int(v)


def pair(check: Callable[[Any], int]) -> Callable[[Any], tuple[int, int]]:
    """An int, or a list of two ints (height, width)."""

    def checker(v: Any) -> tuple[int, int]:
        if type(v) is int:
            n = check(v)
            return (n, n)
        if isinstance(v, (list, tuple)):
            if len(v) != 2:
                raise ArgError(f"expected an int or a list of two ints, got a list of {len(v)}")
            return (check(v[0]), check(v[1]))
        n = check(v)
        return (n, n)

    return checker


def padding(v: Any) -> tuple[int, int] | str:
    """Padding: an int, a pair, or "same" / "valid"."""
    if isinstance(v, str):
        if v not in ("same", "valid"):
            raise ArgError(f'expected an int, a pair, "same" or "valid", got "{v}"')
        return v
    return pair(nonneg_int)(v)


def number(v: Any) -> float:
    """Any int or float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgError(f"expected a number, got {_typename(v)}")
    return float(v)


def positive_number(v: Any) -> float:
    """A number above zero."""
    f = number(v)
    if f <= 0:
        raise ArgError(f"must be above 0, got {v}", code=E212)
    return f


def probability(v: Any) -> float:
    """A number in [0, 1]."""
    f = number(v)
    if not 0.0 <= f <= 1.0:
        raise ArgError(f"must lie in [0, 1], got {v}", code=E212)
    return f


def boolean(v: Any) -> bool:
    """true or false."""
    if not isinstance(v, bool):
        raise ArgError(f"expected true or false, got {_typename(v)}")
    return v


def choice(*options: str) -> Callable[[Any], str]:
    """One of a fixed set of strings."""

    def checker(v: Any) -> str:
        if not isinstance(v, str) or v not in options:
            raise ArgError(f"expected one of {', '.join(repr(o) for o in options)}, got {v!r}")
        return v

    return checker


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """None, or a value the inner checker accepts."""

    def checker(v: Any) -> Any:
        return None if v is None else check(v)

    return checker
