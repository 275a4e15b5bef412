"""Property: on any input the checker accepts, or reports diagnostics with valid spans; nothing else.

Inputs are mutations of every stock spec and small random specs built from
the language's constructs. CI runs a few hundred cases; tests/fuzz/fuzz_checker.py
runs 10,000 or more.
"""

from __future__ import annotations

import os
import random

import pytest
from fuzz.mutate import SPECS, check_one, mutate, random_spec, stock_texts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnspec.semantics.elaborate import Limits

_STOCK = stock_texts()
#: Mutations that turn a 3 into 100000 build networks of a million layers legitimately, which is
#: slow but not wrong; a lower layer limit keeps each case short (the fuzz script runs the real limits).
_LIMITS = Limits(max_nodes=20_000)
_FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("CNNSPEC_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


@pytest.fixture(autouse=True)
def _in_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Mutated specs keep their imports, which resolve against the working directory for spec text.
    monkeypatch.chdir(SPECS)


@_FUZZ_SETTINGS
@given(st.sampled_from(range(len(_STOCK))), st.integers(0, 2**32 - 1))
def test_mutated_stock_specs_never_crash_the_checker(which: int, seed: int) -> None:
    _, text = _STOCK[which]
    check_one(mutate(text, random.Random(seed)), _LIMITS)


@_FUZZ_SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_random_specs_never_crash_the_checker(seed: int) -> None:
    rng = random.Random(seed)
    text = random_spec(rng)
    check_one(mutate(text, rng) if rng.random() < 0.5 else text, _LIMITS)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_checker(text: str) -> None:
    check_one(text, _LIMITS)
