"""Checkpoints: resuming gives bit-identical weights; faults leave the last good checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import launch_here, load_weights

from cnnspec.train import checkpoint, cli

pytestmark = pytest.mark.slow

COMMON = ("--data", "digits", "--epochs", "3", "--batch-size", "64", "--progress", "off", "--seed", "1")


class Result:
    """Exit status and output of an in-process ``cnnspec train`` (same code path as the CLI)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def train(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``cnnspec train ARGS`` in this process, optionally with a fault injected."""

    def run(*args: str, fault: str | None = None) -> Result:
        capsys.readouterr()
        with monkeypatch.context() as m:
            if fault:
                m.setenv("CNNSPEC_FAULT", fault)
            else:
                m.delenv("CNNSPEC_FAULT", raising=False)
            code = cli.main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def _history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _same_run(a: Path, b: Path) -> None:
    wa, wb = load_weights(a / "model.safetensors"), load_weights(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs"
    keys = ("epoch", "step", "train_loss", "val_loss", "val_top1", "val_top5", "lr")
    assert [{k: h[k] for k in keys} for h in _history(a)] == [{k: h[k] for k in keys} for h in _history(b)]


def test_resume_is_bit_identical(tmp_path: Path, lenet: Path, train) -> None:
    full = train(str(lenet), *COMMON, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr

    # Stopped at the end of epoch 1, then resumed.
    part = train(str(lenet), *COMMON, "--out", str(tmp_path / "part"), "--stop-after", "1")
    assert part.returncode == 0, part.stderr
    assert len(_history(tmp_path / "part")) == 1
    resumed = train("--resume", "--out", str(tmp_path / "part"))  # spec and options come from the run
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step00000022-epoch0001.pt" in resumed.stdout
    _same_run(tmp_path / "full", tmp_path / "part")

    # Interrupted mid-epoch 2 by a real SIGINT (as from Ctrl-C), then resumed.
    stopped = train(str(lenet), *COMMON, "--out", str(tmp_path / "int"), fault="sigint@step:30")
    assert stopped.returncode == 130, stopped.stderr
    assert "stopped by SIGINT" in stopped.stdout
    assert checkpoint.latest_checkpoint(tmp_path / "int").name == "step00000031-epoch0001.pt"
    resumed = train(str(lenet), "--resume", "--out", str(tmp_path / "int"))
    assert resumed.returncode == 0, resumed.stderr
    _same_run(tmp_path / "full", tmp_path / "int")

    # Only the last keep_checkpoints (3) remain, and they load with weights_only=True.
    kept = checkpoint.list_checkpoints(tmp_path / "full")
    assert [p.name for p in kept] == ["step00000022-epoch0001.pt", "step00000044-epoch0002.pt",
                                      "step00000066-epoch0003.pt"]
    state = torch.load(kept[-1], weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "epoch", "step_in_epoch"} <= state.keys()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path, lenet: Path, train) -> None:
    out = tmp_path / "nan"
    res = train(str(lenet), *COMMON, "--out", str(out), fault="nan@step:30")
    assert res.returncode == 1
    assert "non-finite loss" in res.stderr and "Traceback" not in res.stderr
    assert "step00000022-epoch0001.pt" in res.stderr  # names the checkpoint it kept
    assert [p.name for p in checkpoint.list_checkpoints(out)] == ["step00000022-epoch0001.pt"]
    assert not (out / "model.safetensors").exists()
    state = checkpoint.load(checkpoint.latest_checkpoint(out))
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    # And the run can go on from there.
    resumed = train("--resume", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert len(_history(out)) == 3


def test_killed_worker_is_restarted_and_finishes(tmp_path: Path, lenet: Path) -> None:
    out = tmp_path / "kill"
    # Killed in epoch 2 (22 steps an epoch), restarted from epoch 1's checkpoint: two epochs are enough.
    args = ("--data", "digits", "--epochs", "2", "--batch-size", "32", "--progress", "off")
    res = launch_here(str(lenet), *args, "--out", str(out), "--nproc-per-node", "2", "--max-restarts", "1",
                  env={"CNNSPEC_FAULT": "kill@step:30,rank:1"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "torchrun restart: resuming from step00000022-epoch0001.pt" in res.stdout
    assert [h["epoch"] for h in _history(out)] == [1, 2]
    assert (out / "model.safetensors").is_file()
