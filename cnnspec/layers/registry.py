"""The layer table: one LayerKind entry per layer holds all of its rules.

An entry says which arguments the layer takes, how it maps an input shape
to an output shape, how many parameters and buffers it owns, how many MACs
it costs, what autograd keeps of it for backward, and which torch module or
function implements it. Shapes exclude the batch dimension: (C, H, W) for
feature maps, (F,) for flat features. Nothing here imports torch at import
time; torch is imported when a module is built.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

Shape = tuple[int, ...]


class ShapeError(Exception):
    """A layer cannot accept its input shape; the message shows the arithmetic."""

    def __init__(
        self, message: str, help: str | None = None, code: str = "E301", notes: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.help = help
        self.code = code
        self.notes = list(notes)


class ArgError(Exception):
    """An argument value has the wrong type or is out of range."""

    def __init__(self, message: str, code: str = "E211") -> None:
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

    rate: the argument is a probability that changes neither the layer's
    shapes nor its parameters nor its compute (dropout's p). Consecutive block
    instances that differ only in such values fold as one, marked "rates vary"
    (EfficientNet's stochastic depth grows from block to block).
    """

    name: str
    check: Callable[[Any], Any]
    default: Any = REQUIRED
    doc: str = ""
    rate: bool = False

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
    init_group: str | None = None
    inplace: bool = False
    inplace_function: str | None = None
    arity: str = "one"
    aliases: tuple[str, ...] = field(default=())
    saves: Saves | Callable[[Attrs, Any, Shape, str], Saves] = SAVES_INPUT
    view: bool = False

    def signature(self) -> str:
        """The call signature as a user writes it, for error messages."""
        parts = [a.name if a.required else f"{a.name} = {_show(a.default)}" for a in self.args]
        return f"{self.name}({', '.join(parts)})"


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


_TABLE: dict[str, LayerKind] = {}


_DERIVED: dict[Callable[[dict[str, LayerKind]], Any], Any] = {}
_T = TypeVar("_T")


def register(kind: LayerKind, *, replace: bool = False) -> LayerKind:
    """Add a layer kind to the table (used by the built-ins and by users)."""
    if kind.name in _TABLE and not replace:
        raise ValueError(f"layer kind {kind.name!r} is already registered")
    _TABLE[kind.name] = kind
    _DERIVED.clear()
    return kind


def per_table(fn: Callable[[dict[str, LayerKind]], _T]) -> Callable[[], _T]:
    """fn of the layer table (every kind by name), computed once for each state of the table."""

    def derived() -> _T:
        got = _DERIVED.get(fn, _DERIVED)  # the dict itself: not yet computed
        if got is _DERIVED:
            got = _DERIVED[fn] = fn(all_kinds())
        return got  # type: ignore[no-any-return]

    return derived


def lookup(name: str) -> LayerKind | None:
    """The layer kind called name, or None."""
    kind = _TABLE.get(name)
    if kind is None and "conv" not in _TABLE:  # the built-ins register on first use
        _ensure_builtins()
        kind = _TABLE.get(name)
    return kind


def all_kinds() -> dict[str, LayerKind]:
    """Every registered layer kind by name."""
    _ensure_builtins()
    return dict(_TABLE)


def suggest(name: str, candidates: Sequence[str]) -> str | None:
    """The closest candidate to a misspelt name, if one is close enough."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def _ensure_builtins() -> None:
    if "conv" not in _TABLE:
        from cnnspec.layers import builtin  # noqa: F401  (registers on import)


# -------------------------------------------------------- argument checkers


def _typename(v: Any) -> str:
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, int):
        return "an int"
    if isinstance(v, float):
        return "a float"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


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
        raise ArgError(f"must be at least 1, got {n}", code="E212")
    return n


def nonneg_int(v: Any) -> int:
    """An int of at least 0."""
    if type(v) is int and v >= 0:
        return v
    n = as_int(v, "an int")
    if n < 0:
        raise ArgError(f"must not be negative, got {n}", code="E212")
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
        raise ArgError(f"must be above 0, got {v}", code="E212")
    return f


def probability(v: Any) -> float:
    """A number in [0, 1]."""
    f = number(v)
    if not 0.0 <= f <= 1.0:
        raise ArgError(f"must lie in [0, 1], got {v}", code="E212")
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
