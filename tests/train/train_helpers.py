"""Helpers for the trainer tests: run the real CLI in a subprocess, read weights back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LENET = REPO / "specs" / "lenet5.cnn"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m cnnspec train ARGS`` from the repository root; output captured."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("CNNSPEC_FAULT", "TORCHELASTIC"))}
    full_env = {**inherited, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cnnspec", "train", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_weights(path: Path) -> dict:
    """The tensors of a model.safetensors file."""
    from safetensors.torch import load_file

    return load_file(str(path))


def initial_weights(spec: str | Path, seed: int, **params: object) -> dict:
    """The weights a run with ``--seed seed`` starts from: the trainer seeds torch, then compiles the spec.

    test_train_aux's weight-0 case checks this: a head that gets no gradient
    ends training exactly equal to these weights.
    """
    import torch

    import cnnspec

    torch.manual_seed(seed)
    return cnnspec.compile(str(spec), **params).state_dict()
