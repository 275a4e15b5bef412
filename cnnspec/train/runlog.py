"""What a run tells and records: its opening lines, the progress bar's figures, each epoch's record, its last lines.

Both training loops (cnnspec.train.loop, cnnspec.train.pipeline_loop) call
these on rank 0 (``say`` prints nothing elsewhere), so a data-parallel and a
pipeline run read alike and write the same metrics.jsonl.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from cnnspec.train import data, rundir
from cnnspec.train.config import TrainConfig
from cnnspec.train.model import ModelSource
from cnnspec.train.progress import Bar, Progress
from cnnspec.train.schedule import Schedule

Say = Callable[[str], None]

# The record's figures TensorBoard plots, by epoch.
_TB_KEYS = ("train_loss", "val_loss", "val_top1", "val_top5", "lr", "images_per_s")


def printer(enabled: bool) -> Say:
    """A ``say(msg)`` that prints (without tearing a progress bar) only when ``enabled`` (rank 0)."""

    def say(msg: str) -> None:
        if enabled:
            Progress.write(msg)

    return say


def tensorboard(config: TrainConfig, out: Path, say: Say) -> Any:
    """A TensorBoard writer into the run's folder, or None without --tensorboard (or the package)."""
    if not config.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        say("warning: --tensorboard needs the tensorboard package; logging to metrics.jsonl only")
        return None
    return SummaryWriter(str(out / rundir.TB_DIRNAME))


def describe_run(
    say: Say,
    *,
    config: TrainConfig,
    source: ModelSource,
    n_params: int,
    ds: data.DataSource,
    setup: Iterable[str],
    schedule: Schedule,
    global_batch: int,
    plan: rundir.Plan,
    epoch: int,
    start_step: int,
) -> None:
    """The opening lines: the network and data, ``setup`` (the loop's own lines), the learning rate, the start."""
    say(f"cnnspec train: {source.name} ({n_params:,} parameters) on {ds.name}: "
        f"{len(ds.train)} train / {len(ds.val)} val images, {ds.num_classes} classes")
    for line in setup:
        say(line)
    say(f"  learning rate {schedule.peak_lr:.6g} = base {config.base_lr:g} x {global_batch} / "
        f"{config.base_batch} (linear scaling), {config.optimizer}")
    say(f"  schedule: {schedule.describe()}")
    for note in ds.notes:
        say(note)
    for bad in plan.damaged:
        say(f"warning: {bad.name} is damaged (its checksum fails); resuming from an earlier checkpoint")
    if plan.resume_from is not None:
        how = "torchrun restart: resuming" if plan.auto_resumed else "resuming"
        say(f"  {how} from {plan.resume_from.name} (epoch {epoch + 1}, step {start_step})")


class LossWindow:
    """The training losses and optimizer steps since the progress bar last showed figures, and the time that took."""

    def __init__(self, *, global_batch: int) -> None:
        self.global_batch = global_batch
        self.losses: list[torch.Tensor] = []
        self.steps = 0
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor) -> None:
        """Count one micro-batch's (detached) loss."""
        self.losses.append(loss)

    def step(self) -> None:
        """Count one optimizer step (global_batch images, whether or not this worker saw a loss)."""
        self.steps += 1

    def pending(self, device: torch.device) -> torch.Tensor:
        """The window's loss sum and count (float64, on device): what workers sum to share their losses."""
        if not self.losses:
            return torch.zeros(2, dtype=torch.float64, device=device)
        total = torch.stack(self.losses).double().sum()
        return torch.stack([total, torch.tensor(float(len(self.losses)), dtype=torch.float64, device=total.device)])

    def show(self, bar: Bar, lr: float, summed: torch.Tensor | None = None) -> None:
        """Show the mean loss, ``lr`` and images per second on ``bar``; start a new window.

        summed: the :meth:`pending` figures added up over workers (a pipeline's
        rank 0 runs the first stage and computes no loss itself); without it,
        this worker's own losses.
        """
        now = time.perf_counter()
        if summed is not None:
            total, count = summed.tolist()
            recent = total / count if count else float("nan")
        else:
            recent = torch.stack(self.losses).float().mean().item() if self.losses else float("nan")
        rate = self.steps * self.global_batch / max(now - self.start, 1e-9)
        bar.show(loss=recent, lr=lr, rate=rate)
        self.start, self.losses, self.steps = now, [], 0


def epoch_record(
    *, epoch: int, step: int, totals: torch.Tensor, val: dict[str, float], lr: float, images: int, train_time: float
) -> dict[str, Any]:
    """One line of metrics.jsonl: ``totals`` holds the epoch's training loss sum and image count (all workers)."""
    return {
        "epoch": epoch,
        "step": step,
        "train_loss": totals[0].item() / max(totals[1].item(), 1.0),
        "val_loss": val["loss"],
        "val_top1": val["top1"],
        "val_top5": val["top5"],
        "lr": lr,
        "images_per_s": images / max(train_time, 1e-9),
        "epoch_time_s": train_time,
    }


def report_epoch(
    record: dict[str, Any], *, epochs: int, say: Say, metrics_path: Path, tb: Any, warnings: Iterable[str] = ()
) -> None:
    """Print the epoch's line (then ``warnings``), append its record to metrics.jsonl, plot it in TensorBoard."""
    say(f"epoch {record['epoch']:>3}/{epochs}  train_loss {record['train_loss']:.4f}  "
        f"val_loss {record['val_loss']:.4f}  top1 {100 * record['val_top1']:.2f}%  "
        f"top5 {100 * record['val_top5']:.2f}%  lr {record['lr']:.4g}  "
        f"{record['images_per_s']:.0f} img/s  ({record['epoch_time_s']:.1f}s)")
    for line in warnings:
        say(line)
    with metrics_path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    if tb is not None:
        for key in _TB_KEYS:
            tb.add_scalar(key, record[key], record["epoch"])
        tb.flush()


def report_finish(say: Say, *, epoch: int, epochs: int, model_path: Path, tb: Any) -> None:
    """The last lines, once the final weights are in ``model_path``; closes the TensorBoard writer."""
    if epoch < epochs:
        say(f"stopped after epoch {epoch} of {epochs} (--stop-after); continue with --resume")
    say(f"final weights: {model_path}")
    if tb is not None:
        tb.close()
