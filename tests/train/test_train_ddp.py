"""Data parallelism: real multi-process gloo runs against one process with the global batch."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch
from train_helpers import initial_weights, launch_here, load_weights, train_here

import cnnspec

pytestmark = pytest.mark.slow

# One epoch, no momentum or weight decay differences: only the data split may differ.
COMMON = ("--data", "digits", "--epochs", "1", "--progress", "off", "--seed", "5")


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_two_workers_batch_32_equal_one_process_batch_64(tmp_path: Path, lenet: Path) -> None:
    train_here(lenet, tmp_path / "one", data="digits", epochs=1, seed=5, batch_size=64)  # COMMON, in this process
    two = launch_here(str(lenet), *COMMON, "--batch-size", "32", "--out", str(tmp_path / "two"),
                      "--nproc-per-node", "2")  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert "2 workers (gloo)" in two.stdout and "effective batch 64" in two.stdout
    # The same 22 global batches of 64 were seen; only float summation order differs.
    w1, w2 = load_weights(tmp_path / "one" / "model.safetensors"), load_weights(tmp_path / "two" / "model.safetensors")
    assert _max_diff(w1, w2) < 1e-5
    # The weights moved a lot from where the seeded run started, so agreement is not trivial.
    assert _max_diff(w1, initial_weights(lenet, seed=5)) > 1e-2

    # Accumulating 2 micro-batches of 16 on each of 2 workers (DDP no_sync) is the same step again.
    acc = launch_here(str(lenet), *COMMON, "--batch-size", "16", "--accum-steps", "2", "--out", str(tmp_path / "acc"),
                  "--nproc-per-node", "2")
    assert acc.returncode == 0, acc.stderr
    assert _max_diff(w1, load_weights(tmp_path / "acc" / "model.safetensors")) < 1e-5


def test_accumulating_k_micro_batches_equals_one_big_batch(tmp_path: Path, lenet: Path) -> None:
    def run(out: str, **opts: int) -> dict[str, torch.Tensor]:
        with redirect_stdout(io.StringIO()):
            cnnspec.train(str(lenet), data="digits", out=tmp_path / out, epochs=1, progress="off", **opts)
        return load_weights(tmp_path / out / "model.safetensors")

    big = run("big", batch_size=96)
    small = run("small", batch_size=24, accum_steps=4)
    assert _max_diff(big, small) < 1e-5
    different = run("other", batch_size=24)  # no accumulation: four times the steps
    assert _max_diff(big, different) > 1e-3
