"""Fixtures shared by the tests of the language and its compiler (helpers live in support.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
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


@pytest.fixture(scope="session", autouse=True)
def _parse_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Imported files' parsed ASTs (cnnspec.syntax.cache) go to a folder of this session, for this
    process and the commands it starts: the tests neither read the user's cache nor fill it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNSPEC_CACHE_DIR", str(tmp_path_factory.mktemp("parse-cache")))
        yield


@pytest.fixture
def specs_dir() -> Path:
    """The specs/ folder of the repository."""
    return SPECS

