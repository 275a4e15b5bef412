"""The linear scaling rule and the warmup/decay schedule against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from cnnspec.train.config import TrainConfig
from cnnspec.train.schedule import build_schedule, scaled_lr


def test_linear_scaling_rule() -> None:
    # 8 workers x 32 images x 4 accumulation steps = 1024 images per step.
    assert scaled_lr(0.1, 8 * 32 * 4, 256) == pytest.approx(0.4)
    assert scaled_lr(0.1, 64, 256) == pytest.approx(0.025)


def test_warmup_then_cosine_by_hand() -> None:
    cfg = TrainConfig(epochs=10, warmup_epochs=2, base_lr=0.1, base_batch=256, schedule="cosine", min_lr=0.001)
    s = build_schedule(cfg, global_batch=512, steps_per_epoch=5)
    assert s.peak_lr == pytest.approx(0.2)
    assert s.warmup_steps == 10 and s.total_steps == 50
    assert s.lr(0) == pytest.approx(0.2 * 1 / 10)
    assert s.lr(4) == pytest.approx(0.2 * 5 / 10)
    assert s.lr(9) == pytest.approx(0.2)
    assert s.lr(10) == pytest.approx(0.2)  # cosine starts at the peak
    # Half-way through the decay the cosine sits at the mean of peak and floor.
    assert s.lr(30) == pytest.approx(0.001 + 0.5 * (0.2 - 0.001))
    assert s.lr(20) == pytest.approx(0.001 + 0.5 * (0.2 - 0.001) * (1 + math.cos(math.pi * 10 / 40)))
    assert s.lr(50) == pytest.approx(0.001)


def test_step_and_multistep_by_hand() -> None:
    step = build_schedule(
        TrainConfig(epochs=9, warmup_steps=3, schedule="step", step_size=3, gamma=0.5, base_lr=0.4, base_batch=64),
        global_batch=64,
        steps_per_epoch=10,
    )
    assert step.lr(0) == pytest.approx(0.4 / 3)
    assert step.lr(3) == pytest.approx(0.4)
    assert step.lr(29) == pytest.approx(0.4)
    assert step.lr(30) == pytest.approx(0.2)  # epoch 3
    assert step.lr(65) == pytest.approx(0.1)  # epoch 6
    multi = build_schedule(
        TrainConfig(epochs=10, warmup_epochs=0, schedule="multistep", milestones=[2, 5], gamma=0.1, base_lr=1.0,
                    base_batch=10),
        global_batch=10,
        steps_per_epoch=4,
    )
    assert [multi.lr(i) for i in (0, 7, 8, 19, 20, 39)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_lambdalr_follows_the_schedule() -> None:
    # The trainer drives torch's LambdaLR with Schedule.factor; the optimizer must see Schedule.lr.
    s = build_schedule(TrainConfig(epochs=3, warmup_epochs=1), global_batch=128, steps_per_epoch=4)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=s.peak_lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, s.factor)
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([s.lr(i) for i in range(12)])
    assert seen[0] == pytest.approx(0.05 * 1 / 4) and seen[3] == pytest.approx(0.05)
