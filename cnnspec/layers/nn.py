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


# The modules below are written out with the network by the .py export (their source is copied into
# the generated file), so they use only `torch` and `nn`.


class LayerNorm2d(nn.LayerNorm):
    """Layer normalisation over the channels at each position of an N×C×H×W map (ConvNeXt's LayerNorm2d):
    nn.LayerNorm's weight and bias keys, applied channels-last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = torch.nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Slice(nn.Module):
    """x[..., start:end:step, ...] along dim (torch's dims, the batch being 0)."""

    def __init__(self, dim: int, start: int = 0, end: int | None = None, step: int = 1) -> None:
        super().__init__()
        self.dim = dim
        self.start = start
        self.end = end
        self.step = step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = [slice(None)] * (self.dim % x.ndim) + [slice(self.start, self.end, self.step)]
        return x[tuple(index)]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, start={self.start}, end={self.end}, step={self.step}"


class Chunk(nn.Module):
    """Part `index` of x split along dim into `chunks` equal parts (torch.chunk) or parts of the given
    sizes (torch.split)."""

    def __init__(self, chunks: int | list[int], index: int, dim: int = 1) -> None:
        super().__init__()
        self.chunks = chunks
        self.index = index
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.chunks, int):
            return torch.chunk(x, self.chunks, self.dim)[self.index]
        return torch.split(x, self.chunks, self.dim)[self.index]

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, index={self.index}, dim={self.dim}"


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
