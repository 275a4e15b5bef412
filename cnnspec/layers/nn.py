"""Torch modules that cnnspec needs and torch.nn lacks."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx
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


class AuxOutputsGraphModule(torch.fx.GraphModule):
    """A GraphModule with auxiliary outputs (GoogLeNet's and Inception-v3's side heads).

    In training mode forward returns (main, *aux), in eval mode only main;
    switching modes swaps between two fx graphs over the same submodules, so
    the eval graph does not compute the auxiliary heads. `aux_names` and
    `aux_weights` give each auxiliary output's name and loss weight.
    """

    def __init__(
        self,
        root: Any,
        train_graph: torch.fx.Graph,
        eval_graph: torch.fx.Graph,
        class_name: str,
        aux_names: list[str],
        aux_weights: list[float],
    ) -> None:
        super().__init__(root, train_graph, class_name=class_name)
        self._mode_graphs = {True: train_graph, False: eval_graph}
        self.aux_names = list(aux_names)
        self.aux_weights = list(aux_weights)

    def train(self, mode: bool = True) -> AuxOutputsGraphModule:
        """Set the mode, and the graph that goes with it."""
        super().train(mode)
        wanted = self._mode_graphs[mode]
        if self.graph is not wanted:
            self.graph = wanted  # the setter recompiles forward
        return self
