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
from bisect import bisect_left
from operator import itemgetter
from typing import NamedTuple

from cnnspec.ir import Copy, Graph, Node

F32 = 4
I64 = 8

#: Ops that keep their output for backward (the derivative is written in terms of the result).
_SAVES_OUTPUT = {"relu", "relu6", "sigmoid", "tanh", "softmax"}
#: Ops that keep nothing and return a view or a fresh tensor nobody needs again.
_SAVES_NOTHING = {"add", "concat", "identity", "flatten"}
#: Ops that keep their input and nothing else.
_SAVES_INPUT = {"conv", "linear", "avgpool", "gelu", "silu", "hardswish", "hardsigmoid", "leaky_relu"}
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


#: What the ops that keep the same whatever their arguments and shapes keep (see _saves).
_FIXED: dict[str, tuple[tuple[int, ...], int, int]] = {
    **{kind: ((), 0, 0) for kind in _SAVES_NOTHING},
    **{kind: ((-1,), 0, 0) for kind in _SAVES_OUTPUT},  # -1: the node's own output
    **{kind: ((0,), 0, 0) for kind in _SAVES_INPUT},
}


def _saves(node: Node, device: str) -> tuple[tuple[int, ...], int, int]:
    """(input positions whose storage is kept, new per-sample bytes, new fixed bytes) of one node."""
    kind, x, y = node.kind, node.in_shapes[0] if node.in_shapes else (), node.out_shape
    fixed = _FIXED.get(kind)
    if fixed is not None:
        return fixed
    if kind == "batchnorm":
        return (0,), 0, 2 * x[0] * F32  # save_mean and save_invstd, per channel
    if kind == "groupnorm":
        return (0,), 2 * node.attrs.get("groups", 1) * F32, 0  # mean and rstd per sample and group
    if kind == "layernorm":
        return (0,), 2 * F32, 0
    if kind in ("maxpool", "adaptive_maxpool"):
        return (0,), _numel(y) * I64, 0  # argmax indices
    if kind == "adaptive_avgpool":
        # Global pooling runs as mean(), which keeps only sizes; other sizes keep the input.
        return (() if y[1:] == (1, 1) else (0,)), 0, 0
    if kind == "dropout":
        if not node.attrs.get("p"):
            return (), 0, 0
        return (), _numel(x) * (1 if device == "cuda" else F32), 0
    if kind == "stochastic_depth":
        # x * noise with one noise value per sample ("row") or per batch.
        return ((), F32, 0) if node.attrs.get("mode", "row") == "row" else ((), 0, F32)
    if kind == "mul":
        return tuple(range(len(node.inputs))), 0, 0
    if kind == "lrn" and len(x) == 3:
        # F.local_response_norm: x·x keeps x; the channel-padded square (C+n−1)×H×W is kept by
        # avg_pool3d; pow keeps its input; the division keeps x and the divisor.
        c, h, w = x
        n = node.attrs.get("size", 1)
        return (0,), ((c + n - 1) * h * w + 2 * c * h * w) * F32, 0
    # A layer this pass does not know: assume it keeps its input, like most ops.
    return (0,), 0, 0


def saved_tensors(graph: Graph, device: str = "cpu") -> list[Saved | None]:
    """Bytes each node makes autograd keep, by id (None for the input), attributed to the first
    node that keeps a storage.

    device is "cpu" or "cuda"; they differ only in dropout's mask (float on CPU, bool on CUDA).
    """
    nodes = graph.slots  # a copy's nodes are made only where it cannot take its source's figures
    count = len(nodes)
    storage = list(range(count))  # node id -> id of the node whose storage its output is
    keeper = [-1] * count  # storage id -> id of the node that first kept it (-1: none yet)
    out: list[Saved | None] = [None] * count
    views: list[int] = []  # ids of the nodes whose output is another's storage, ascending
    origin = graph.origin  # a replayed node's shapes are its origin's, made where it is not
    prod, make, fixed_rules = math.prod, tuple.__new__, _FIXED

    def visit(first: int, stop: int) -> None:
        for node in nodes[first:stop]:
            nid, kind, inputs = node.id, node.kind, node.inputs
            if kind in _VIEWS and inputs:
                storage[nid] = storage[inputs[0]]
                views.append(nid)
            elif kind == "input":
                continue
            rule = fixed_rules.get(kind)  # most ops: no call
            positions, per_sample, fixed = rule if rule is not None else _saves(node, device)
            for pos in positions:
                key = storage[nid] if pos == -1 else storage[inputs[pos]]
                if keeper[key] < 0:
                    keeper[key] = nid
                    per_sample += prod((nodes[key] or nodes[origin(key)]).out_shape) * F32  # type: ignore[union-attr]
            out[nid] = make(Saved, (per_sample, fixed))

    for start, stop, run in graph.runs():
        if run is None:
            visit(start, stop)
            continue
        times = len(run.paths)
        for j in range(times):
            if j == 2 and _repeat(run.copy(1), run.copy(times - 1), keeper, out, views):
                break
            copy = run.copy(j)
            if not _replicate(copy, storage, keeper, out, views):
                first = copy.start
                graph.node_range(first, first + copy.count)  # made in place in graph.slots, which visit reads
                visit(first, first + copy.count)
    return out


def _replicate(c: Copy, storage: list[int], keeper: list[int], out: list[Saved | None], views: list[int]) -> bool:
    """A replayed block instance's saved bytes, and the storages and keepers that later nodes read,
    from its source's; False when they may differ (its input's storage was kept before it and the
    source's was not, or the reverse).

    An instance reads nothing from outside but its block input, so inside it every storage is its
    own or its input's, and what its nodes keep first is its source's, node for node, unless the
    one storage they share with the rest of the network starts out kept in one and not the other.
    Nodes after it read only its output, so of the keepers inside it only its output storage's is
    carried over (the others stay -1: nothing reads them).
    """
    s1, s0, n, input_id, source_input, _, output = c
    key1 = storage[input_id]
    k0 = keeper[storage[source_input]]
    if (0 <= k0 < s0) != (keeper[key1] >= 0):
        return False
    shift, end0 = s1 - s0, s0 + n
    out[s1 : s1 + n] = out[s0:end0]
    if views and views[-1] >= s0:  # else every storage inside the source is its own node's
        first = bisect_left(views, s0)
        if views[first] < end0:
            storage[s1 : s1 + n] = [s + shift if s >= s0 else key1 for s in storage[s0:end0]]
            views += [v + shift for v in views[first : bisect_left(views, end0)]]
    if s0 <= k0 < end0 and keeper[key1] < 0:
        keeper[key1] = k0 + shift
    key = storage[output]
    if key != key1:  # the output's storage is the copy's own
        # A source storage kept first by a node after the source instance is not kept yet in the copy.
        k = keeper[key - shift]
        if s0 <= k < end0:
            keeper[key] = k + shift
    return True


def _repeat(second: Copy, last: Copy, keeper: list[int], out: list[Saved | None], views: list[int]) -> bool:
    """The third to the last copy of a run, from the second; False when a view inside makes a
    copy's storages more than its own nodes' (then each copy is replicated in turn).

    Each copy after the first reads the one before it, whose output storage stands as the one
    before that did (_replicate carries over its keeper alike), so the second copy's figures
    hold for every later one, shifted by whole copies. With no view inside, every storage in a
    copy is its own node's, and of the keepers only the last output's is read after the run.
    """
    n, source = second.count, second.source
    i = bisect_left(views, source)
    if i < len(views) and views[i] < source + n:
        return False
    first = second.start
    out[first + n : last.start + n] = out[first : first + n] * ((last.start - first) // n)
    k = keeper[second.output]  # the second copy's output: kept inside it, or not yet (-1)
    if k >= first:
        keeper[last.output] = k + last.start - first
    return True


def activation_bytes(saved: list[Saved | None], batch: int) -> int:
    """Total activation memory of a training step at batch size `batch`."""
    values = list(filter(None, saved))  # drops the Nones (a Saved is a non-empty tuple)
    return sum(map(itemgetter(0), values)) * batch + sum(map(itemgetter(1), values))
