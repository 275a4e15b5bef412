"""Activation memory of a training step, computed statically.

Convention (docs/analysis.md): the bytes of the tensors autograd saves for
the backward pass in one training-mode forward at batch B, fp32, the input
batch included, each storage counted once; parameters, buffers, gradients
and optimizer state are not activations. That is what stays allocated
between forward and backward, so it is what grows with the batch.

What each op saves follows PyTorch's derivative formulas (derivatives.yaml):
conv and linear keep their input; batch norm its input and two per-channel
statistics; ReLU, sigmoid, tanh and softmax their output; max pooling its
input and int64 indices; dropout its mask (a float tensor on CPU, a bool
mask on CUDA); add, concat and flatten nothing. benchmarks/bench_memory.py
and tests/test_analysis.py check the sum against what autograd really saves.
"""

from __future__ import annotations

import math
from operator import itemgetter
from typing import NamedTuple

from cnnspec.ir import Graph, Node

F32 = 4
I64 = 8

#: Ops that keep their output for backward (the derivative is written in terms of the result).
_SAVES_OUTPUT = {"relu", "relu6", "sigmoid", "tanh", "softmax"}
#: Ops that keep nothing and return a view or a fresh tensor nobody needs again.
_SAVES_NOTHING = {"add", "concat", "identity", "flatten"}
#: Ops whose output is a view of their input (same storage).
_VIEWS = {"flatten", "identity"}


class Saved(NamedTuple):
    """Bytes one node makes autograd keep: per sample (scales with B) and fixed."""

    per_sample: int
    fixed: int

    def at(self, batch: int) -> int:
        """Bytes at batch size `batch`."""
        return self.per_sample * batch + self.fixed


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _saves(node: Node, device: str) -> tuple[list[int], int, int]:
    """(input positions whose storage is kept, new per-sample bytes, new fixed bytes) of one node."""
    kind, x, y = node.kind, node.in_shapes[0] if node.in_shapes else (), node.out_shape
    if kind in _SAVES_NOTHING:
        return [], 0, 0
    if kind in _SAVES_OUTPUT:
        return [-1], 0, 0  # -1: the node's own output
    if kind in ("conv", "linear", "avgpool", "gelu", "silu", "hardswish", "hardsigmoid", "leaky_relu"):
        return [0], 0, 0
    if kind == "batchnorm":
        return [0], 0, 2 * x[0] * F32  # save_mean and save_invstd, per channel
    if kind == "groupnorm":
        return [0], 2 * node.attrs.get("groups", 1) * F32, 0  # mean and rstd per sample and group
    if kind == "layernorm":
        return [0], 2 * F32, 0
    if kind in ("maxpool", "adaptive_maxpool"):
        return [0], _numel(y) * I64, 0  # argmax indices
    if kind == "adaptive_avgpool":
        # Global pooling runs as mean(), which keeps only sizes; other sizes keep the input.
        return ([] if y[1:] == (1, 1) else [0]), 0, 0
    if kind == "dropout":
        if not node.attrs.get("p"):
            return [], 0, 0
        return [], _numel(x) * (1 if device == "cuda" else F32), 0
    if kind == "stochastic_depth":
        # x * noise with one noise value per sample ("row") or per batch.
        return ([], F32, 0) if node.attrs.get("mode", "row") == "row" else ([], 0, F32)
    if kind == "mul":
        return list(range(len(node.inputs))), 0, 0
    if kind == "lrn" and len(x) == 3:
        # F.local_response_norm: x·x keeps x; the channel-padded square (C+n−1)×H×W is kept by
        # avg_pool3d; pow keeps its input; the division keeps x and the divisor.
        c, h, w = x
        n = node.attrs.get("size", 1)
        return [0], ((c + n - 1) * h * w + 2 * c * h * w) * F32, 0
    # A layer this pass does not know: assume it keeps its input, like most ops.
    return [0], 0, 0


def saved_tensors(graph: Graph, device: str = "cpu") -> dict[int, Saved]:
    """Bytes each node makes autograd keep, attributed to the first node that keeps a storage.

    device is "cpu" or "cuda"; they differ only in dropout's mask (float on CPU, bool on CUDA).
    """
    nodes = graph.nodes
    storage = list(range(len(nodes)))  # node id -> id of the node whose storage its output is
    kept: set[int] = set()
    out: dict[int, Saved] = {}
    origin = graph.origins()
    prod, make = math.prod, tuple.__new__
    # What a node keeps depends on its op and shapes only: a replayed layer's is its source's.
    local: dict[int, tuple[list[int], int, int]] = {}
    for node in nodes:
        nid, kind, inputs = node.id, node.kind, node.inputs
        if kind in _VIEWS and inputs:
            storage[nid] = storage[inputs[0]]
        elif kind == "input":
            continue
        o = origin[nid]
        saves = local.get(o)
        if saves is None:
            saves = local[o] = _saves(node, device)
        positions, per_sample, fixed = saves
        for pos in positions:
            key = storage[nid] if pos == -1 else storage[inputs[pos]]
            if key not in kept:
                kept.add(key)
                per_sample += prod(nodes[key].out_shape) * F32
        prev = out.get(o)
        if prev is not None and prev[0] == per_sample and prev[1] == fixed:
            out[nid] = prev  # a replayed layer keeps what its source kept: share the value
        else:
            out[nid] = make(Saved, (per_sample, fixed))
    return out


def activation_bytes(saved: dict[int, Saved], batch: int) -> int:
    """Total activation memory of a training step at batch size `batch`."""
    values = saved.values()
    return sum(map(itemgetter(0), values)) * batch + sum(map(itemgetter(1), values))
