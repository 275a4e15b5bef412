"""Fixtures shared by the tests of the language and its compiler (helpers live in support.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import SPECS

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under `pytest -n N` each worker gets one intra-op thread, so N workers do not fight over N cores.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_user_import_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's CNNSPEC_PATH stays out of the tests: imports, and the places an error lists, must not
    depend on the shell the tests run from."""
    monkeypatch.delenv("CNNSPEC_PATH", raising=False)


@pytest.fixture
def specs_dir() -> Path:
    """The specs/ folder of the repository."""
    return SPECS

