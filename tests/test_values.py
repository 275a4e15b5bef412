"""Expressions: the compiled form (values.compiled) against the tree walker (values.evaluate).

The elaborator evaluates through compiled closures; evaluate stays the
definition. For any expression, both must give the same value (of the same
type), or the same error at the same span, and charge the same work.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnspec.semantics import values
from cnnspec.semantics.values import UNKNOWN, EvalError, Ref, ShapeValue, compiled, evaluate, reset_work, work_spent
from cnnspec.syntax.parser import parse_expr

ENV: dict[str, Any] = {
    "a": 3,
    "b": 0,
    "c": -7,
    "big": 2**61,
    "f": 2.5,
    "huge": 1e300,
    "t": True,
    "s": "ab",
    "xs": [1, 2, 3],
    "nest": [[1, 2], [3]],
    "u": UNKNOWN,
    "unit": Ref("Bottleneck", "block"),
}
SHAPE = ShapeValue((64, 56, 56))

LEAVES = [*ENV, "0", "1", "2", "7", "-3", "2.5", "0.0", "1e300", '"x"', "true", "false", "[1, 2]", "[]", "in",
          "in.channels", "in.width", "in.features", "nope"]
OPS = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"]
FUNCS = ["int", "float", "max", "min", "abs", "round", "len", "sum", "divisible", "range", "ceil", "cumsum", "nofunc"]


def expressions() -> st.SearchStrategy[str]:
    """Random expression texts over ENV's names, mixing types so errors are common too."""

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(OPS), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(FUNCS), st.lists(inner, min_size=1, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            ),
            inner.map(lambda x: f"-({x})"),
            st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        )

    return st.recursive(st.sampled_from(LEAVES), extend, max_leaves=8)


def outcome(fn: Any, limit: int) -> tuple[Any, ...]:
    """What evaluating gives: ("value", type, value) or ("error", code, message, span), and the work."""
    reset_work(limit)
    try:
        v = fn()
        got: tuple[Any, ...] = ("value", type(v), repr(v))
    except EvalError as e:
        got = ("error", e.code, str(e), e.span, e.help)
    return (*got, work_spent())


def both(text: str, limit: int = values.MAX_WORK) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    e = parse_expr(text)
    walked = outcome(lambda: evaluate(e, ENV, SHAPE), limit)
    fast = outcome(lambda: compiled(e)(ENV, SHAPE), limit)
    return walked, fast


@pytest.mark.parametrize(
    "text",
    [
        "a * 4 + 1",
        "int(a * 64 / 64) * 2",
        "big * 4",  # past 2^62: E604
        "big + big",
        "a / b",  # division by zero
        "a // 2 + a % 2",
        "huge * huge",  # inf: E203
        "1e300 ** 2",
        "(-8) ** 0.5",
        "f * 2 + a",
        "t + 1",  # a bool is no number
        "s + s",
        "xs + xs",
        "u * 2",  # UNKNOWN stays UNKNOWN
        "max(a, f)",
        "max(xs)",
        "sum(nest[0]) + len(nest)",
        "divisible(a * 10, 8)",
        "nofunc(a)",
        "nope + 1",
        "unit * 2",
        "in.channels * 2",
        "int(in)",
        "range(a)",
        "a == 3 and f < 3",
        "xs == [1, 2, 3]",
    ],
)
def test_the_compiled_form_gives_what_evaluate_gives(text: str) -> None:
    walked, fast = both(text)
    assert fast == walked


def test_the_work_limit_stops_both_at_the_same_argument() -> None:
    # Each argument of a call is charged as it is evaluated: the limit falls on the same one.
    for limit in range(0, 12):
        walked, fast = both("max(sum(xs), len(nest), max(a, 2), sum([1, 2, 3]))", limit)
        assert fast == walked


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), st.sampled_from([values.MAX_WORK, 3, 10]))
def test_random_expressions_evaluate_alike_compiled_or_walked(text: str, limit: int) -> None:
    walked, fast = both(text, limit)
    assert fast == walked, text
