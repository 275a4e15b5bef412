"""Learning rate: the linear scaling rule, linear warmup, then a decay.

Everything here counts optimizer steps (not micro-batches), so the schedule is
the same whatever the number of workers or accumulation steps, given the same
global batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnspec.train.config import TrainConfig


def scaled_lr(base_lr: float, global_batch: int, base_batch: int) -> float:
    """The linear scaling rule (Goyal et al. 2017): ``base_lr * global_batch / base_batch``."""
    return base_lr * global_batch / base_batch


@dataclass(frozen=True)
class Schedule:
    """Learning rate per optimizer step: warmup to ``peak_lr``, then decay."""

    peak_lr: float
    total_steps: int
    steps_per_epoch: int
    warmup_steps: int
    kind: str = "cosine"
    min_lr: float = 0.0
    step_size: int = 30  # epochs
    milestones: tuple[int, ...] = ()  # epochs
    gamma: float = 0.1

    def lr(self, step: int) -> float:
        """Learning rate used for optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            # (step + 1) so the very first step already moves the weights.
            return self.peak_lr * (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return self.peak_lr
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, (step - self.warmup_steps) / span)
            return self.min_lr + 0.5 * (self.peak_lr - self.min_lr) * (1 + math.cos(math.pi * progress))
        epoch = step // self.steps_per_epoch
        if self.kind == "step":
            return self.peak_lr * self.gamma ** (epoch // self.step_size)
        if self.kind == "multistep":
            passed = sum(1 for m in self.milestones if epoch >= m)
            return self.peak_lr * self.gamma**passed
        raise ValueError(f"unknown schedule {self.kind!r}")

    def factor(self, step: int) -> float:
        """``lr(step) / peak_lr``, the multiplier torch's LambdaLR expects."""
        return self.lr(step) / self.peak_lr

    def describe(self) -> str:
        """One line a person can check against the formulas in docs/training.md."""
        spe = self.steps_per_epoch
        warm = (
            f"linear warmup over {self.warmup_steps} steps ({self.warmup_steps / spe:g} epochs), then "
            if self.warmup_steps
            else ""
        )
        if self.kind == "cosine":
            decay = f"cosine to {self.min_lr:g} at step {self.total_steps}"
        elif self.kind == "step":
            decay = f"x{self.gamma:g} every {self.step_size} epochs ({self.step_size * spe} steps)"
        elif self.kind == "multistep":
            decay = f"x{self.gamma:g} at epochs {list(self.milestones)}"
        else:
            decay = "constant"
        return f"{warm}{decay}; {self.total_steps} steps ({spe} per epoch)"


def build_schedule(config: TrainConfig, *, global_batch: int, steps_per_epoch: int) -> Schedule:
    """The schedule for ``config`` at a given global batch and epoch length."""
    warmup = config.warmup_steps
    if warmup is None:
        warmup = round(config.warmup_epochs * steps_per_epoch)
    total = config.epochs * steps_per_epoch
    return Schedule(
        peak_lr=scaled_lr(config.base_lr, global_batch, config.base_batch),
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        warmup_steps=min(warmup, total),
        kind=config.schedule,
        min_lr=config.min_lr,
        step_size=config.step_size,
        milestones=tuple(config.milestones),
        gamma=config.gamma,
    )
