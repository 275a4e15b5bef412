"""Fixtures shared by the tests of the language and its compiler (helpers live in support.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import SPECS


@pytest.fixture
def specs_dir() -> Path:
    """The specs/ folder of the repository."""
    return SPECS

