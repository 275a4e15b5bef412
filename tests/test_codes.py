"""Diagnostic codes are named constants: the names equal the registry, and call sites use them."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from cnnspec.diagnostics import codes
from cnnspec.diagnostics.codes import CODES

ROOT = Path(__file__).resolve().parents[1]

#: Where call sites must name codes by constant: the whole package.
CONVERTED = ("cnnspec",)


def test_every_registered_code_is_a_constant_of_the_same_name_and_no_other() -> None:
    constants = {name: value for name, value in vars(codes).items() if re.fullmatch(r"[EW]\d{3}", name)}
    assert constants == {code: code for code in CODES}


def _code_literals(path: Path) -> list[str]:
    """`"E605"`-style string literals in a Python file (messages that mention a code are not literals of one)."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return [f"{path.relative_to(ROOT)}:{t.start[0]}: {t.string}" for t in tokens
            if t.type == tokenize.STRING and re.fullmatch(r"""(["'])[EW]\d{3}\1""", t.string)]


def test_converted_call_sites_name_codes_by_constant() -> None:
    files = [p for entry in CONVERTED for p in ([ROOT / entry] if entry.endswith(".py") else
                                                sorted((ROOT / entry).rglob("*.py")))]
    assert len(files) > 10  # the folders exist: an empty list would pass vacuously
    # codes.py is where each code is defined, the one place its literal belongs.
    found = [hit for path in files if path.name != "codes.py" for hit in _code_literals(path)]
    assert not found, found


def test_the_literal_finder_finds_literals() -> None:
    """The scan above would see a literal code, so its empty result means something."""
    sample = ROOT / "cnnspec" / "diagnostics" / "codes.py"  # the registry spells every code as a literal
    assert len(_code_literals(sample)) >= len(CODES)
