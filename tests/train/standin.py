"""A hand-written LeNet-5 with the layers of specs/lenet5.cnn (used where the compiler is not needed)."""

from __future__ import annotations

from torch import nn


def lenet5(num_classes: int = 10) -> nn.Module:
    """LeNet-5 for 1 x 32 x 32 inputs, as specs/lenet5.cnn describes it."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )
