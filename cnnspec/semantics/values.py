"""Evaluating spec expressions: arithmetic, lists, `in.*`, and pure built-ins.

Values are Python ints, floats, bools, strings and lists, plus ShapeValue
for `in`. UNKNOWN stands for a value that an earlier error left undecided;
anything computed from it is UNKNOWN too, so one root cause gives one error.
Nothing here can run code, and sizes are bounded so no expression can
exhaust the machine.
"""

from __future__ import annotations

import math
import operator
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from cnnspec.syntax import ast
from cnnspec.syntax.source import Span

#: Largest integer magnitude an expression may produce.
MAX_INT = 2**62
#: Longest list (or string) an expression may build.
MAX_LIST = 1_000_000
#: Work one elaboration may do: statements run plus list items built, compared
#: or passed to built-ins. It bounds both the time and the memory of any spec.
MAX_WORK = 5_000_000


class _Work:
    """The work counter of the current elaboration (see MAX_WORK)."""

    spent = 0
    limit = MAX_WORK


_work = _Work()
#: The counter itself, for the loops that charge inline (spent += n; past limit, charge(0, span)).
WORK = _work


def reset_work(limit: int = MAX_WORK) -> None:
    """Start counting work afresh, up to limit (the elaborator calls this per network)."""
    _work.spent = 0
    _work.limit = limit


def charge(n: int, span: Span | None) -> None:
    """Count n units of work; past the limit, stop with E608."""
    _work.spent += n
    if _work.spent > _work.limit:
        raise EvalError(
            f"evaluating the spec takes more than {_work.limit:,} steps",
            span,  # type: ignore[arg-type]
            "E608",
            help="look for loops that build no layers, or large lists built again and again",
        )


def work_spent() -> int:
    """Work counted since the last reset_work."""
    return _work.spent


def deep_size(v: Any, cap: int) -> int:
    """The number of items in v, nested lists included, counting up to at most cap + 1."""
    if not isinstance(v, list):
        return 1
    n, stack = 0, [v]
    while stack and n <= cap:
        for x in stack.pop():
            n += 1
            if isinstance(x, list):
                stack.append(x)
    return n


class _Unknown:
    """A value left undecided by an earlier error."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


class EvalError(Exception):
    """An expression cannot be evaluated; carries the span to point at."""

    def __init__(self, message: str, span: Span, code: str = "E204", help: str | None = None) -> None:
        super().__init__(message)
        self.span = span
        self.code = code
        self.help = help


@dataclass(frozen=True, slots=True)
class ShapeValue:
    """The value of `in`: the shape of a block's input, batch excluded."""

    dims: tuple[int, ...]

    def attribute(self, name: str) -> Any:
        """channels, height, width (feature maps), features (flat), rank, shape."""
        if name == "rank":
            return len(self.dims)
        if name == "shape":
            return list(self.dims)
        if len(self.dims) == 3 and name in ("channels", "height", "width"):
            return self.dims[("channels", "height", "width").index(name)]
        if len(self.dims) == 1 and name in ("features", "channels"):
            return self.dims[0]
        return None


@dataclass(frozen=True, slots=True)
class Ref:
    """A block or layer kind used as a value, e.g. `unit = BasicBlock`, then called as `unit(64)`."""

    name: str
    kind: str  # "block" or "layer"


def type_name(v: Any) -> str:
    """The spec-level name of a value's type."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, ShapeValue):
        return "shape"
    if isinstance(v, Ref):
        return v.kind
    return type(v).__name__


def show(v: Any, limit: int = 60) -> str:
    """A value as the spec language writes it, cut to about limit characters."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"' if len(v) <= limit else f'"{v[:limit]}…"'
    if isinstance(v, list):
        parts: list[str] = []
        used = 2
        for x in v:
            if used > limit:
                parts.append(f"… {len(v) - len(parts)} more")
                break
            parts.append(show(x, max(8, limit - used)))
            used += len(parts[-1]) + 2
        return "[" + ", ".join(parts) + "]"
    if isinstance(v, ShapeValue):
        return "×".join(map(str, v.dims))
    if isinstance(v, Ref):
        return v.name
    if isinstance(v, int) and abs(v) >= 10**18:
        return f"{v:.3e}"
    return repr(v) if isinstance(v, float) else str(v)


def divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round v to a multiple of divisor, never going below 90% of v (MobileNet's rule)."""
    if min_value is None:
        min_value = divisor
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def cumsum(items: list[float]) -> list[float]:
    """Running totals: cumsum([1, 2, 3]) == [1, 3, 6]."""
    out, total = [], 0
    for v in items:
        total += v
        out.append(total)
    return out


def _range(*args: int) -> list[int]:
    r = range(*args)
    if len(r) > MAX_LIST:
        raise ValueError(f"range of {len(r)} items is longer than {MAX_LIST}")
    return list(r)


BUILTINS: dict[str, tuple[Callable[..., Any], str]] = {
    "min": (min, "min(a, b, ...) or min(list)"),
    "max": (max, "max(a, b, ...) or max(list)"),
    "round": (round, "round(x) or round(x, digits)"),
    "int": (int, "int(x): toward zero"),
    "float": (float, "float(x)"),
    "abs": (abs, "abs(x)"),
    "len": (len, "len(list)"),
    "sum": (sum, "sum(list)"),
    "cumsum": (cumsum, "cumsum(list): running totals"),
    "ceil": (math.ceil, "ceil(x)"),
    "floor": (math.floor, "floor(x)"),
    "range": (_range, "range(stop) or range(start, stop[, step])"),
    "divisible": (divisible, "divisible(v, divisor = 8, min_value = divisor)"),
}


def _check_size(v: Any, span: Span) -> Any:
    if type(v) is int or (isinstance(v, int) and not isinstance(v, bool)):  # the common case first
        if abs(v) > MAX_INT:
            raise EvalError(f"the number {v:.3e} is too large (the limit is 2^62)", span, "E604")
        return v
    if isinstance(v, float) and not math.isfinite(v):
        raise EvalError("the result is not a finite number", span, "E203")
    if isinstance(v, (list, str)) and len(v) > MAX_LIST:
        what = "list" if isinstance(v, list) else "string"
        raise EvalError(f"a {what} of {len(v):,} items is longer than the limit of {MAX_LIST:,}", span, "E604")
    if isinstance(v, list):
        # Building a list costs its items, nested lists included, so that no
        # spec can build (or later compare) structures larger than MAX_WORK.
        charge(deep_size(v, _work.limit), span)
    return v


#: The arithmetic of two numbers, without a Python frame per operation.
_NUMERIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: Expression classes whose value is written in the spec.
LITERALS = frozenset({ast.Num, ast.Str, ast.Bool})


def evaluate(e: ast.Expr, env: Mapping[str, Any], block_input: ShapeValue | _Unknown | None = None) -> Any:
    """The value of an expression, or EvalError pointing at the offending part."""
    # Dispatch on the exact class (the expression classes have no subclasses): a chain of
    # isinstance checks costs more than the evaluation of most expressions.
    t = type(e)
    if t in LITERALS:
        return e.value  # type: ignore[attr-defined]
    if t is ast.Name:
        if e.id in env:
            return env[e.id]
        hint = _suggest(e.id, list(env))
        raise EvalError(
            f"unknown name `{e.id}`",
            e.span,
            "E102",
            help=f"did you mean `{hint}`?" if hint else ("names in scope: " + ", ".join(sorted(env)) if env else None),
        )
    if t is ast.Binary:
        return _binary(e, env, block_input)
    if t is ast.FuncCall:
        return _call(e, env, block_input)
    if t is ast.BlockInput:
        if block_input is None:
            raise EvalError("`in` is only known once the network's input is given", e.span, "E202")
        return block_input
    if t is ast.ListExpr:
        return _check_size([evaluate(i, env, block_input) for i in e.items], e.span)
    if t is ast.ListComp:
        return _list_comp(e, env, block_input)
    if t is ast.Attribute:
        obj = evaluate(e.obj, env, block_input)
        if obj is UNKNOWN:
            return UNKNOWN
        if isinstance(obj, ShapeValue):
            v = obj.attribute(e.name)
            if v is None:
                valid = "channels, height, width" if len(obj.dims) == 3 else "features"
                hint = _suggest(e.name, [*valid.split(", "), "rank", "shape"])
                raise EvalError(
                    f"the shape {show(obj)} has no `{e.name}`",
                    e.span,
                    "E107",
                    help=(f"did you mean `{hint}`? " if hint else "") + f"use one of {valid}, rank, shape",
                )
            return v
        raise EvalError(f"a {type_name(obj)} has no attribute `{e.name}`", e.span, "E204")
    if t is ast.Index:
        obj = evaluate(e.obj, env, block_input)
        idx = evaluate(e.index, env, block_input)
        if obj is UNKNOWN or idx is UNKNOWN:
            return UNKNOWN
        if not isinstance(obj, list):
            raise EvalError(f"only lists can be indexed, not a {type_name(obj)}", e.obj.span, "E204")
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise EvalError(f"a list index must be an int, not a {type_name(idx)}", e.index.span, "E204")
        if not -len(obj) <= idx < len(obj):
            raise EvalError(
                f"index {idx} is out of range for a list of {len(obj)} items", e.index.span, "E205"
            )
        return obj[idx]
    if t is ast.Unary:
        v = evaluate(e.operand, env, block_input)
        if v is UNKNOWN:
            return UNKNOWN
        if e.op == "not":
            if not isinstance(v, bool):
                raise EvalError(f"`not` needs true or false, got a {type_name(v)}", e.operand.span, "E204")
            return not v
        if not _is_num(v):
            raise EvalError(f"cannot negate a {type_name(v)}", e.operand.span, "E204")
        return -v
    if t is ast.CondExpr:
        cond = evaluate(e.cond, env, block_input)
        if cond is UNKNOWN:
            return UNKNOWN
        if not isinstance(cond, bool):
            raise EvalError(f"`if` needs true or false, got a {type_name(cond)}", e.cond.span, "E204")
        return evaluate(e.then if cond else e.orelse, env, block_input)
    raise EvalError(f"cannot evaluate {type(e).__name__}", e.span)  # pragma: no cover - grammar has no others


def _weight(v: Any) -> int:
    """How many values v holds, nested lists counted through."""
    return 1 + sum(_weight(x) for x in v) if isinstance(v, list) else 1


def _list_comp(e: ast.ListComp, env: Mapping[str, Any], block_input: Any) -> Any:
    items = evaluate(e.iter, env, block_input)
    if items is UNKNOWN:
        return UNKNOWN
    if not isinstance(items, list):
        what = type_name(items)
        raise EvalError(f"`for` in a list needs a list, got a {what}", e.iter.span, "E204", help="use range(n)")
    out, total = [], 0
    for v in items:
        x = evaluate(e.item, ChainMap({e.var: v}, env), block_input)
        # Nested comprehensions multiply sizes: bound what one builds, nested values included.
        total += _weight(x)
        if total > MAX_LIST:
            raise EvalError(f"the list holds more than {MAX_LIST} values", e.span, "E604")
        out.append(x)
    return _check_size(out, e.span)


def _binary(e: ast.Binary, env: Mapping[str, Any], block_input: Any) -> Any:
    if e.op in ("and", "or"):
        a = evaluate(e.left, env, block_input)
        if a is UNKNOWN:
            return UNKNOWN
        if not isinstance(a, bool):
            raise EvalError(f"`{e.op}` needs true or false, got a {type_name(a)}", e.left.span, "E204")
        if (e.op == "and" and not a) or (e.op == "or" and a):
            return a
        b = evaluate(e.right, env, block_input)
        if b is not UNKNOWN and not isinstance(b, bool):
            raise EvalError(f"`{e.op}` needs true or false, got a {type_name(b)}", e.right.span, "E204")
        return b
    return _binary_values(e, evaluate(e.left, env, block_input), evaluate(e.right, env, block_input))


def _binary_values(e: ast.Binary, a: Any, b: Any) -> Any:
    """A binary operation (not `and`, `or`) of its operands' values."""
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):  # bools are neither: most expressions
        arith = _NUMERIC.get(e.op)
        if arith is not None:
            if b == 0 and e.op in ("/", "//", "%"):
                raise EvalError("division by zero", e.right.span, "E203")
            if e.op == "**" and (abs(b) > 64 or (ta is float and abs(a) > 1e6)):
                raise EvalError(f"the power {show(a)} ** {show(b)} is too large", e.span, "E604")
            try:
                v = arith(a, b)
            except OverflowError:  # a float power past 1.8e308; other results come back inf
                raise EvalError(f"the power {show(a)} ** {show(b)} is too large", e.span, "E604") from None
            if type(v) is complex:  # a negative number to a fractional power
                raise EvalError(f"({show(a)}) ** {show(b)} is not a real number", e.span, "E203")
            return _check_size(v, e.span)
    if e.op in _COMPARE:
        if e.op in ("==", "!="):
            charge(deep_size(a, _work.limit) + deep_size(b, _work.limit), e.span)
            return _COMPARE[e.op](a, b)
        if not (_is_num(a) and _is_num(b)) and not (isinstance(a, str) and isinstance(b, str)):
            raise EvalError(f"cannot compare a {type_name(a)} with a {type_name(b)}", e.span, "E204")
        return _COMPARE[e.op](a, b)
    if e.op == "+" and isinstance(a, list) and isinstance(b, list):
        return _check_size(a + b, e.span)
    if e.op == "+" and isinstance(a, str) and isinstance(b, str):
        charge(len(a) + len(b), e.span)
        return _check_size(a + b, e.span)
    # Two numbers took the arithmetic above.
    raise EvalError(f"cannot apply `{e.op}` to a {type_name(a)} and a {type_name(b)}", e.span, "E204")


def _call(e: ast.FuncCall, env: Mapping[str, Any], block_input: Any) -> Any:
    if e.func not in BUILTINS:
        hint = _suggest(e.func, list(BUILTINS))
        raise EvalError(
            f"unknown function `{e.func}`",
            e.span,
            "E105",
            help=(f"did you mean `{hint}`? " if hint else "") + "functions: " + ", ".join(sorted(BUILTINS)),
        )
    args = []
    kwargs = {}
    for a in e.args:
        v = evaluate(a.value, env, block_input)
        if v is UNKNOWN:
            return UNKNOWN
        # A built-in walks its arguments (sum, max, len of nested lists): charge them.
        charge(deep_size(v, _work.limit), a.span)
        if a.name is None:
            args.append(v)
        else:
            kwargs[a.name] = v
    return _call_values(e, args, kwargs)


def _call_values(e: ast.FuncCall, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """A call of a built-in (known to exist) with its arguments' values, charged for already."""
    fn, sig = BUILTINS[e.func]
    odd = [v for v in [*args, *kwargs.values()] if isinstance(v, (ShapeValue, Ref))]
    if odd:
        raise EvalError(f"{e.func} cannot take a {type_name(odd[0])}", e.span, "E226", help=f"signature: {sig}")
    try:
        return _check_size(fn(*args, **kwargs), e.span)
    except EvalError:
        raise
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, MemoryError) as exc:
        raise EvalError(f"{e.func}: {_plain(exc)}", e.span, "E226", help=f"signature: {sig}") from None


def _plain(exc: Exception) -> str:
    """A Python exception's message in the spec's words (no Python type names where they leak)."""
    text = str(exc) or type(exc).__name__
    return text.replace("'list' object", "a list").replace("'str'", "string").replace("'int'", "int")


def _suggest(name: str, candidates: list[str]) -> str | None:
    from cnnspec.layers.registry import suggest

    return suggest(name, candidates)


# ------------------------------------------------------------ compiled form

Compiled = Callable[[Mapping[str, Any], Any], Any]

#: Per expression (by id, with the expression, which keeps the id from being reused): its
#: compiled form. A fact of the parsed text, which the parse cache keeps across checks.
_COMPILED: dict[int, tuple[ast.Expr, Compiled]] = {}
_COMPILED_MAX = 100_000


def compiled(e: ast.Expr) -> Compiled:
    """A function of (env, block_input) that gives evaluate(e, env, block_input): the same value,
    the same error and the same work charged, without walking the tree each time.

    Names, arithmetic and calls of built-ins (most expressions in specs) become closures that
    do what evaluate does for them; every other expression, and any value off their common
    path, goes to evaluate's own code for that node.
    """
    got = _COMPILED.get(id(e))
    if got is not None and got[0] is e:
        return got[1]
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    fn = _compile(e)
    _COMPILED[id(e)] = (e, fn)
    return fn


def _compile(e: ast.Expr) -> Compiled:
    t = type(e)
    if t in LITERALS:
        value = e.value  # type: ignore[attr-defined]
        return lambda env, block_input: value
    if t is ast.Name:
        return _compile_name(e)  # type: ignore[arg-type]
    if t is ast.Binary and (e.op in _NUMERIC or e.op in _COMPARE):  # type: ignore[attr-defined]
        return _compile_binary(e)  # type: ignore[arg-type]
    if t is ast.FuncCall and e.func in BUILTINS:  # type: ignore[attr-defined]
        return _compile_call(e)  # type: ignore[arg-type]
    return partial(evaluate, e)


def _compile_name(e: ast.Name) -> Compiled:
    name = e.id

    def value(env: Mapping[str, Any], block_input: Any) -> Any:
        if name in env:
            return env[name]
        return evaluate(e, env, block_input)  # the error, with its hint

    return value


def _compile_binary(e: ast.Binary) -> Compiled:
    left, right, op, span = _compile(e.left), _compile(e.right), _NUMERIC.get(e.op), e.span
    if op is None or e.op == "**" or e.op in ("/", "//", "%"):
        # Comparisons, powers and divisions: evaluate's checks, on the operands' values.
        return lambda env, block_input: _binary_values(e, left(env, block_input), right(env, block_input))

    def arithmetic(env: Mapping[str, Any], block_input: Any) -> Any:  # + - * on two ints: most
        a = left(env, block_input)
        b = right(env, block_input)
        if a.__class__ is int and b.__class__ is int:
            v = op(a, b)
            if -MAX_INT <= v <= MAX_INT:
                return v
            return _check_size(v, span)  # the error
        return _binary_values(e, a, b)

    return arithmetic


def _compile_call(e: ast.FuncCall) -> Compiled:
    args = [(a.name, _compile(a.value), a.span) for a in e.args]
    work = _work

    def call(env: Mapping[str, Any], block_input: Any) -> Any:
        positional, named = [], {}
        for name, arg, span in args:
            v = arg(env, block_input)
            if v is UNKNOWN:
                return UNKNOWN
            # charge(deep_size(v)), as _call does, without the calls for a value that is no list.
            work.spent += deep_size(v, work.limit) if v.__class__ is list else 1
            if work.spent > work.limit:
                charge(0, span)  # the error
            if name is None:
                positional.append(v)
            else:
                named[name] = v
        return _call_values(e, positional, named)

    return call
