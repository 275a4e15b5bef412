"""The embedded demo: LeNet-5 on the digits, and reduced precision on CPU."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml
from train_helpers import load_weights, run_cli

import cnnspec

pytestmark = pytest.mark.slow


def test_demo_reaches_95_percent(tmp_path: Path, lenet: Path) -> None:
    out = tmp_path / "demo"
    res = run_cli(str(lenet), "--data", "digits", "--out", str(out))
    assert res.returncode == 0, res.stderr
    # The start of a run states the effective batch, the scaled learning rate and the schedule.
    assert "effective batch 64" in res.stdout
    assert "learning rate 0.025 = base 0.1 x 64 / 256" in res.stdout
    assert "schedule: linear warmup over 22 steps" in res.stdout

    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, 21))
    for key in ("epoch", "train_loss", "val_loss", "val_top1", "val_top5", "lr", "images_per_s"):
        assert key in history[-1]
    assert history[-1]["val_top1"] >= 0.95
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 10

    weights = load_weights(out / "model.safetensors")
    assert set(weights) == set(cnnspec.compile(str(lenet)).state_dict())
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["data"] == "digits" and saved["spec"] == str(lenet)


def test_bf16_autocast_trains_on_cpu(tmp_path: Path, lenet: Path) -> None:
    def run(out: str, precision: str, **options: object) -> list[dict]:
        with redirect_stdout(io.StringIO()):
            r = cnnspec.train(str(lenet), data="digits", out=tmp_path / out, epochs=4, progress="off",
                              precision=precision, **options)
        return r.history

    bf16 = run("bf16", "bf16")
    assert bf16[-1]["val_top1"] >= 0.8
    assert bf16[-1]["train_loss"] < bf16[0]["train_loss"] / 2
    # Autocast really ran in bf16: the first epoch of the same run in fp32 differs already (the same
    # schedule; --stop-after spares the other three).
    fp32 = run("fp32", "fp32", stop_after=1)
    assert bf16[0]["train_loss"] != fp32[0]["train_loss"]
