"""Fixtures for the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import LENET


@pytest.fixture
def lenet() -> Path:
    """Path of the LeNet-5 spec."""
    return LENET
