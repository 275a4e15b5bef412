"""Expressions (values.evaluate): values, errors and the work each evaluation charges to its Budget.

A Budget belongs to one check and is passed down explicitly: there is no
shared counter, so evaluations with their own budgets cannot disturb one
another, from one thread or several.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnspec.semantics import values
from cnnspec.semantics.values import UNKNOWN, Budget, EvalError, Ref, ShapeValue, evaluate
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
FUNCS = ["int", "float", "max", "min", "abs", "round", "len", "sum", "divisible", "range", "ceil", "cumsum", "log",
         "exp", "sqrt", "pow", "nofunc"]


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


def outcome(text: str, limit: int = values.MAX_WORK) -> tuple[Any, ...]:
    """What evaluating gives: ("value", type, value) or ("error", code, message, span, help), and the work."""
    budget = Budget(limit)
    try:
        v = evaluate(parse_expr(text), ENV, SHAPE, budget)
        got: tuple[Any, ...] = ("value", type(v), repr(v))
    except EvalError as e:
        got = ("error", e.code, str(e), e.span, e.help)
    return (*got, budget.spent)


#: What one expression step costs (an operation, call, index, attribute): work is the list items
#: built, walked or compared, plus S per step.
S = values.EXPR_WORK


@pytest.mark.parametrize(
    ("text", "expected", "work"),
    [
        ("a * 4 + 1", 13, 2 * S),
        ("int(a * 64 / 64) * 2", 6, 1 + 4 * S),
        ("big * 4", "E604", S),  # past 2^62
        ("big + big", 2**62, S),  # the limit itself is allowed
        ("a / b", "E203", S),  # division by zero
        ("a // 2 + a % 2", 2, 3 * S),
        ("huge * huge", "E203", S),  # inf
        ("1e300 ** 2", "E604", S),
        ("(-8) ** 0.5", "E203", 2 * S),
        ("0 ** -1", "E203", 2 * S),  # 1 / 0 in disguise: not a ZeroDivisionError
        ("(a - 3.0) ** -2.5", "E203", 3 * S),
        ("0 ** 0 + a ** -1", 1 + 1 / 3, 4 * S),
        ("f * 2 + a", 8.0, 2 * S),
        ("t + 1", "E204", S),  # a bool is no number
        ("s + s", "abab", 4 + S),
        ("xs + xs", [1, 2, 3, 1, 2, 3], 6 + S),  # a list built costs its items
        ("u * 2", UNKNOWN, S),  # UNKNOWN stays UNKNOWN
        ("max(a, f)", 3, 2 + S),  # a call costs its arguments
        ("max(xs)", 3, 3 + S),
        ("sum(nest[0]) + len(nest)", 5, 7 + 4 * S),  # steps: +, sum, [], len
        ("divisible(a * 10, 8)", 32, 2 + 2 * S),
        ("nofunc(a)", "E105", S),
        ("nope + 1", "E102", S),
        ("unit * 2", "E204", S),
        ("in.channels * 2", 128, 3 * S),
        ("int(in)", "E226", 1 + 2 * S),
        ("range(a)", [0, 1, 2], 4 + S),
        ("a == 3 and f < 3", True, 2 + 3 * S),
        ("xs == [1, 2, 3]", True, 9 + 2 * S),  # comparing lists costs their items
    ],
)
def test_an_expression_gives_its_value_or_error_and_charges_its_work(text: str, expected: Any, work: int) -> None:
    got = outcome(text)
    if isinstance(expected, str) and expected[:1] == "E" and expected[1:].isdigit():
        assert got[:2] == ("error", expected)
    else:
        assert got[:3] == ("value", type(expected), repr(expected))
    assert got[-1] == work


def test_the_work_limit_stops_at_the_argument_that_passes_it() -> None:
    text = "max(sum(xs), len(nest), max(a, 2), sum([1, 2, 3]))"
    full = outcome(text)
    assert full[0] == "value"
    for limit in range(full[-1]):
        got = outcome(text, limit)
        assert got[:2] == ("error", "E608"), limit
        assert f"more than {limit:,} steps" in got[2]
    assert outcome(text, full[-1]) == full


def test_a_budget_is_shared_by_the_evaluations_given_it_and_by_no_others() -> None:
    once = 6 + S  # the list built and the step
    budget = Budget(once + S)
    e = parse_expr("xs + xs")
    evaluate(e, ENV, SHAPE, budget)
    assert budget.spent == once
    assert evaluate(e, ENV, SHAPE) == [1, 2, 3, 1, 2, 3]  # a fresh budget of its own
    assert budget.spent == once
    with pytest.raises(EvalError) as err:
        evaluate(e, ENV, SHAPE, budget)
    assert err.value.code == "E608"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), st.sampled_from([3, 10]))
def test_a_smaller_budget_only_ever_stops_an_evaluation(text: str, limit: int) -> None:
    full, small = outcome(text), outcome(text, limit)
    if small[:2] == ("error", "E608"):
        assert full[-1] > limit or full[0] == "error", text
    else:
        assert small == full, text


def test_evaluations_in_threads_give_the_single_threaded_results() -> None:
    texts = ["max(sum(xs), len(nest))", "xs + xs", "range(a)", "a / b", "[i * a for i in range(50)]"] * 8
    limits = [values.MAX_WORK, 5, 60]
    alone = [outcome(t, lim) for t in texts for lim in limits]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda tl: outcome(*tl), [(t, lim) for t in texts for lim in limits]))
    assert threaded == alone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("log(1)", 0.0),
        ("log(8, 2)", 3.0),
        ("exp(0)", 1.0),
        ("sqrt(16)", 4.0),
        ("pow(2, 10)", 1024),
        ("pow(2.0, -1)", 0.5),
        ("int(log(1024, 2))", 10),
    ],
)
def test_log_exp_sqrt_and_pow(text: str, expected: Any) -> None:
    got = evaluate(parse_expr(text), ENV, SHAPE, Budget(values.MAX_WORK))
    assert got == pytest.approx(expected) and type(got) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("log(0)", "log: math domain error"),
        ("sqrt(-1)", "sqrt: math domain error"),
        ("exp(1000)", "exp: math range error"),
        ("pow(10, 1000)", "pow: the power 10 ** 1000 is too large"),
        ("pow(0, -1)", "pow: zero cannot be raised to a negative power"),
        ("pow(-8, 0.5)", "pow: (-8) ** 0.5 is not a real number"),
        ("pow(true, 2)", "pow: expected two numbers"),
    ],
)
def test_log_exp_sqrt_and_pow_refuse_what_has_no_real_value(text: str, message: str) -> None:
    with pytest.raises(EvalError) as e:
        evaluate(parse_expr(text), ENV, SHAPE, Budget(values.MAX_WORK))
    assert e.value.code == "E226" and str(e.value) == message
