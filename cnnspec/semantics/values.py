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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cnnspec.diagnostics.codes import E102, E105, E107, E202, E203, E204, E205, E226, E604, E608
from cnnspec.layers.kind import type_name as plain_type_name
from cnnspec.syntax import ast
from cnnspec.syntax.ast import MAX_INT
from cnnspec.syntax.source import Span

#: Longest list (or string) an expression may build.
MAX_LIST = 1_000_000
#: Work one check may do, in units of about one list item built (see Budget for what costs
#: what). It bounds both the time and the memory of any spec: at the limit a check takes
#: a few seconds and holds at most about 200 MB (a list item costs 1 unit and holds at most
#: 36 bytes; a node costs 200 and holds about 2 KB).
MAX_WORK = 5_000_000
#: Work one expression step costs (an operation, call, index, attribute or list literal, or
#: an item of a comprehension): a few Python frames, about 3 µs, as long as some 100 list
#: items built in C take.
EXPR_WORK = 10


@dataclass
class Budget:
    """The work one check may still do (see MAX_WORK); one per check, passed down.

    What costs what, in units (a list item built, copied, compared or walked costs 1,
    nested items included, and so does a character of a string built): an expression
    step EXPR_WORK; the statements, variables, block instances, groups and layer nodes
    of elaboration cost what semantics/elaborate.py says (STATEMENT_WORK, NODE_WORK, ...),
    in proportion to the time and memory each takes through the whole check.
    """

    limit: int = MAX_WORK
    spent: int = 0

    @property
    def left(self) -> int:
        """The units still to spend (0 once the limit is passed)."""
        return max(0, self.limit - self.spent)

    def charge(self, n: int, span: Span | None) -> None:
        """Count n units of work; past the limit, stop with E608."""
        self.spent += n
        if self.spent > self.limit:
            raise self.exceeded(span)

    def exceeded(self, span: Span | None, why: str = "") -> EvalError:
        """The E608 error at span; why: what would pass the limit, when known before doing it."""
        return EvalError(
            f"evaluating the spec takes more than {self.limit:,} steps" + (f": {why}" if why else ""),
            span,  # type: ignore[arg-type]
            E608,
            help="look for loops that build no layers, large lists built again and again, or huge repetitions",
        )


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

    def __init__(self, message: str, span: Span, code: str = E204, help: str | None = None) -> None:
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
    """The spec-level name of a value's type: the layer table's names, and shape, block or layer."""
    if isinstance(v, ShapeValue):
        return "shape"
    if isinstance(v, Ref):
        return v.kind
    return plain_type_name(v)


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


def _pow(base: float, exponent: float) -> float:
    """base ** exponent under the limits the `**` operator keeps (no huge powers, no complex results)."""
    if isinstance(base, bool) or isinstance(exponent, bool):
        raise TypeError("expected two numbers")
    if base == 0 and exponent < 0:
        raise ValueError("zero cannot be raised to a negative power")
    if abs(exponent) > 64 or (isinstance(base, float) and abs(base) > 1e6):
        raise OverflowError(f"the power {base} ** {exponent} is too large")
    v = base**exponent
    if isinstance(v, complex):
        raise ValueError(f"({base}) ** {exponent} is not a real number")
    return v  # type: ignore[no-any-return]


def _log(x: float, base: float | None = None) -> float:
    """The natural logarithm, or the logarithm to base."""
    return math.log(x) if base is None else math.log(x, base)


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
    "log": (_log, "log(x) or log(x, base)"),
    "exp": (math.exp, "exp(x)"),
    "sqrt": (math.sqrt, "sqrt(x)"),
    "pow": (_pow, "pow(base, exponent)"),
    "range": (_range, "range(stop) or range(start, stop[, step])"),
    "divisible": (divisible, "divisible(v, divisor = 8, min_value = divisor)"),
}


def _check_size(v: Any, span: Span, budget: Budget) -> Any:
    if type(v) is int or (isinstance(v, int) and not isinstance(v, bool)):  # the common case first
        if abs(v) > MAX_INT:
            raise EvalError(f"the number {v:.3e} is too large (the limit is 2^62)", span, E604)
        return v
    if isinstance(v, float) and not math.isfinite(v):
        raise EvalError("the result is not a finite number", span, E203)
    if isinstance(v, (list, str)) and len(v) > MAX_LIST:
        what = "list" if isinstance(v, list) else "string"
        raise EvalError(f"a {what} of {len(v):,} items is longer than the limit of {MAX_LIST:,}", span, E604)
    if isinstance(v, list):
        # Building a list costs its items, nested lists included, so that no
        # spec can build (or later compare) structures larger than MAX_WORK;
        # the walk stops once it has counted past what is left.
        budget.charge(deep_size(v, budget.left), span)
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


def evaluate(
    e: ast.Expr, env: Mapping[str, Any], block_input: ShapeValue | _Unknown | None = None, budget: Budget | None = None
) -> Any:
    """The value of an expression, or EvalError pointing at the offending part.

    budget: the work this evaluation may do, shared by the evaluations of one check; a fresh
    one (MAX_WORK) when not given.
    """
    return _eval(e, env, block_input, budget if budget is not None else Budget())


def _eval(e: ast.Expr, env: Mapping[str, Any], block_input: Any, budget: Budget) -> Any:
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
            E102,
            help=f"did you mean `{hint}`?" if hint else ("names in scope: " + ", ".join(sorted(env)) if env else None),
        )
    # Every other step costs a Python frame or more: charged, so that no expression,
    # however wide or often repeated, runs unbounded (literals and names are paid for
    # by the step or list that uses them).
    budget.spent += EXPR_WORK
    if budget.spent > budget.limit:
        raise budget.exceeded(e.span)
    if t is ast.Binary:
        return _binary(e, env, block_input, budget)
    if t is ast.FuncCall:
        return _call(e, env, block_input, budget)
    if t is ast.BlockInput:
        if block_input is None:
            raise EvalError("`in` is only known once the network's input is given", e.span, E202)
        return block_input
    if t is ast.ListExpr:
        return _check_size([_eval(i, env, block_input, budget) for i in e.items], e.span, budget)
    if t is ast.ListComp:
        return _list_comp(e, env, block_input, budget)
    if t is ast.Attribute:
        obj = _eval(e.obj, env, block_input, budget)
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
                    E107,
                    help=(f"did you mean `{hint}`? " if hint else "") + f"use one of {valid}, rank, shape",
                )
            return v
        raise EvalError(f"a {type_name(obj)} has no attribute `{e.name}`", e.span, E204)
    if t is ast.Index:
        obj = _eval(e.obj, env, block_input, budget)
        idx = _eval(e.index, env, block_input, budget)
        if obj is UNKNOWN or idx is UNKNOWN:
            return UNKNOWN
        if not isinstance(obj, list):
            raise EvalError(f"only lists can be indexed, not a {type_name(obj)}", e.obj.span, E204)
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise EvalError(f"a list index must be an int, not a {type_name(idx)}", e.index.span, E204)
        if not -len(obj) <= idx < len(obj):
            raise EvalError(
                f"index {idx} is out of range for a list of {len(obj)} items", e.index.span, E205
            )
        return obj[idx]
    if t is ast.Unary:
        v = _eval(e.operand, env, block_input, budget)
        if v is UNKNOWN:
            return UNKNOWN
        if e.op == "not":
            if not isinstance(v, bool):
                raise EvalError(f"`not` needs true or false, got a {type_name(v)}", e.operand.span, E204)
            return not v
        if not _is_num(v):
            raise EvalError(f"cannot negate a {type_name(v)}", e.operand.span, E204)
        return -v
    if t is ast.CondExpr:
        cond = _eval(e.cond, env, block_input, budget)
        if cond is UNKNOWN:
            return UNKNOWN
        if not isinstance(cond, bool):
            raise EvalError(f"`if` needs true or false, got a {type_name(cond)}", e.cond.span, E204)
        return _eval(e.then if cond else e.orelse, env, block_input, budget)
    raise EvalError(f"cannot evaluate {type(e).__name__}", e.span)  # pragma: no cover - grammar has no others


def _list_comp(e: ast.ListComp, env: Mapping[str, Any], block_input: Any, budget: Budget) -> Any:
    items = _eval(e.iter, env, block_input, budget)
    if items is UNKNOWN:
        return UNKNOWN
    if not isinstance(items, list):
        what = type_name(items)
        raise EvalError(f"`for` in a list needs a list, got a {what}", e.iter.span, E204, help="use range(n)")
    # One plain scope for all the items, its variable rebound for each: a lookup in it is a
    # dict's, where a ChainMap per item would cost Python frames on every name.
    scope = dict(env)
    budget.charge(len(scope) // 8, e.span)
    out, total = [], 0
    for v in items:
        # An item costs a step even when its expression is a bare name.
        budget.charge(EXPR_WORK, e.span)
        scope[e.var] = v
        x = _eval(e.item, scope, block_input, budget)
        # Nested comprehensions multiply sizes: bound what one builds, nested values included
        # (counting stops past the limit, so the count costs no more than the limit).
        total += 1 + (deep_size(x, MAX_LIST - total) if isinstance(x, list) else 0)
        if total > MAX_LIST:
            raise EvalError(f"the list holds more than {MAX_LIST} values", e.span, E604)
        out.append(x)
    return _check_size(out, e.span, budget)


def _binary(e: ast.Binary, env: Mapping[str, Any], block_input: Any, budget: Budget) -> Any:
    if e.op in ("and", "or"):
        a = _eval(e.left, env, block_input, budget)
        if a is UNKNOWN:
            return UNKNOWN
        if not isinstance(a, bool):
            raise EvalError(f"`{e.op}` needs true or false, got a {type_name(a)}", e.left.span, E204)
        if (e.op == "and" and not a) or (e.op == "or" and a):
            return a
        b = _eval(e.right, env, block_input, budget)
        if b is not UNKNOWN and not isinstance(b, bool):
            raise EvalError(f"`{e.op}` needs true or false, got a {type_name(b)}", e.right.span, E204)
        return b
    return _binary_values(e, _eval(e.left, env, block_input, budget), _eval(e.right, env, block_input, budget), budget)


def _binary_values(e: ast.Binary, a: Any, b: Any, budget: Budget) -> Any:
    """A binary operation (not `and`, `or`) of its operands' values."""
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):  # bools are neither: most expressions
        arith = _NUMERIC.get(e.op)
        if arith is not None:
            if b == 0 and e.op in ("/", "//", "%"):
                raise EvalError("division by zero", e.right.span, E203)
            if e.op == "**" and a == 0 and b < 0:  # 1 / 0 in disguise
                raise EvalError(f"zero cannot be raised to a negative power ({show(a)} ** {show(b)})", e.span, E203)
            if e.op == "**" and (abs(b) > 64 or (ta is float and abs(a) > 1e6)):
                raise EvalError(f"the power {show(a)} ** {show(b)} is too large", e.span, E604)
            try:
                v = arith(a, b)
            except OverflowError:  # a float power past 1.8e308; other results come back inf
                raise EvalError(f"the power {show(a)} ** {show(b)} is too large", e.span, E604) from None
            if type(v) is complex:  # a negative number to a fractional power
                raise EvalError(f"({show(a)}) ** {show(b)} is not a real number", e.span, E203)
            return _check_size(v, e.span, budget)
    if e.op in _COMPARE:
        if e.op in ("==", "!="):
            budget.charge(deep_size(a, budget.left) + deep_size(b, budget.left), e.span)
            return _COMPARE[e.op](a, b)
        if not (_is_num(a) and _is_num(b)) and not (isinstance(a, str) and isinstance(b, str)):
            raise EvalError(f"cannot compare a {type_name(a)} with a {type_name(b)}", e.span, E204)
        return _COMPARE[e.op](a, b)
    if e.op == "+" and isinstance(a, list) and isinstance(b, list):
        return _check_size(a + b, e.span, budget)
    if e.op == "+" and isinstance(a, str) and isinstance(b, str):
        budget.charge(len(a) + len(b), e.span)
        return _check_size(a + b, e.span, budget)
    # Two numbers took the arithmetic above.
    raise EvalError(f"cannot apply `{e.op}` to a {type_name(a)} and a {type_name(b)}", e.span, E204)


def _call(e: ast.FuncCall, env: Mapping[str, Any], block_input: Any, budget: Budget) -> Any:
    if e.func not in BUILTINS:
        hint = _suggest(e.func, list(BUILTINS))
        raise EvalError(
            f"unknown function `{e.func}`",
            e.span,
            E105,
            help=(f"did you mean `{hint}`? " if hint else "") + "functions: " + ", ".join(sorted(BUILTINS)),
        )
    args = []
    kwargs = {}
    for a in e.args:
        v = _eval(a.value, env, block_input, budget)
        if v is UNKNOWN:
            return UNKNOWN
        # A built-in walks its arguments (sum, max, len of nested lists): charge them.
        budget.charge(deep_size(v, budget.left), a.span)
        if a.name is None:
            args.append(v)
        else:
            kwargs[a.name] = v
    return _call_values(e, args, kwargs, budget)


def _call_values(e: ast.FuncCall, args: list[Any], kwargs: dict[str, Any], budget: Budget) -> Any:
    """A call of a built-in (known to exist) with its arguments' values, charged for already."""
    fn, sig = BUILTINS[e.func]
    odd = [v for v in [*args, *kwargs.values()] if isinstance(v, (ShapeValue, Ref))]
    if odd:
        raise EvalError(f"{e.func} cannot take a {type_name(odd[0])}", e.span, E226, help=f"signature: {sig}")
    try:
        return _check_size(fn(*args, **kwargs), e.span, budget)
    except EvalError:
        raise
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, MemoryError) as exc:
        raise EvalError(f"{e.func}: {_plain(exc)}", e.span, E226, help=f"signature: {sig}") from None


def _plain(exc: Exception) -> str:
    """A Python exception's message in the spec's words (no Python type names where they leak)."""
    text = str(exc) or type(exc).__name__
    return text.replace("'list' object", "a list").replace("'str'", "string").replace("'int'", "int")


def _suggest(name: str, candidates: list[str]) -> str | None:
    from cnnspec.layers.registry import suggest

    return suggest(name, candidates)
