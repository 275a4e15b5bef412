"""Torch modules that cnnspec needs and torch.nn lacks."""

from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """Drops whole residual paths at random in training (Huang et al. 2016).

    "row" drops each sample independently, "batch" drops the whole batch;
    kept values are scaled by 1 / (1 - p). In eval mode it is the identity.
    """

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(keep)
        if keep > 0.0:
            noise.div_(keep)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"
