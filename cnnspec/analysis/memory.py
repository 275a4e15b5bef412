"""Activation memory of a training step, computed statically.

Convention (docs/analysis.md): the bytes of the tensors autograd saves for
the backward pass in one training-mode forward at batch B, fp32, the input
batch included, each storage counted once; parameters, buffers, gradients
and optimizer state are not activations. That is what stays allocated
between forward and backward, so it is what grows with the batch.

What each op saves follows PyTorch's derivative formulas (derivatives.yaml)
and is its layer kind's `saves` rule in the layer table: conv and linear
keep their input; batch norm its input and two per-channel statistics; ReLU,
sigmoid, tanh and softmax their output; max pooling its input and int64
indices; dropout its mask (a float tensor on CPU, a bool mask on CUDA); add,
concat and flatten nothing. A learned tensor (`param`) is a parameter, so a
mul that keeps one keeps no activation. benchmarks/bench_memory.py and
tests/test_analysis.py check the sum against what autograd really saves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import itemgetter
from typing import NamedTuple

from cnnspec.ir import Graph, Node
from cnnspec.layers.kind import F32, SAVES_INPUT, LayerKind, Saves
from cnnspec.layers.registry import per_table


class Saved(NamedTuple):
    """Bytes one node makes autograd keep: per sample (scales with B) and fixed."""

    per_sample: int
    fixed: int

    def at(self, batch: int) -> int:
        """Bytes at batch size `batch`."""
        return self.per_sample * batch + self.fixed


@per_table
def saves_rules(kinds: dict[str, LayerKind]) -> tuple[dict[str, Saves | Callable[..., Saves]], set[str], set[str]]:
    """Each layer kind's saves rule (LayerKind.saves), the kinds whose output is a view of
    their input, and the joins (whose rules take the tuple of input shapes)."""
    rules = {name: k.saves for name, k in kinds.items()}
    views = {name for name, k in kinds.items() if k.view}
    joins = {name for name, k in kinds.items() if k.arity == "many"}
    return rules, views, joins


@per_table
def _tensor_kinds(kinds: dict[str, LayerKind]) -> set[str]:
    """The kinds that give a learned tensor of their own (arity "none": param)."""
    return {name for name, k in kinds.items() if k.arity == "none"}


def saved_tensors(graph: Graph, device: str = "cpu") -> list[Saved | None]:
    """Bytes each node makes autograd keep, by id (None for the input), attributed to the first
    node that keeps a storage.

    device is "cpu" or "cuda"; they differ only in dropout's mask (float on CPU, bool on CUDA).
    """
    nodes = graph.nodes
    storage = list(range(len(nodes)))  # node id -> id of the node whose storage its output is
    kept: set[int] = set()  # the storages some node already keeps
    out: list[Saved | None] = [None] * len(nodes)
    rules, view_kinds, joins = saves_rules()
    tensors = _tensor_kinds()
    for node in graph.layers():
        nid, inputs = node.id, node.inputs
        if node.kind in view_kinds and inputs:
            storage[nid] = storage[inputs[0]]
        if node.kind in tensors:
            kept.add(nid)  # a learned tensor (param) is a parameter or buffer, never an activation
        positions, per_sample, fixed = applied_saves(rules.get(node.kind, SAVES_INPUT), node, joins, device)
        for pos in positions:
            key = storage[nid] if pos == -1 else storage[inputs[pos]]
            if key not in kept:
                kept.add(key)
                per_sample += math.prod(nodes[key].out_shape) * F32
        out[nid] = Saved(per_sample, fixed)
    return out


def applied_saves(rule: Saves | Callable[..., Saves], node: Node, joins: set[str], device: str) -> Saves:
    """A node's saves rule applied to it: as it is when the same for every node of its kind, else
    called on the node's arguments and shapes (a join's rule takes the tuple of its input shapes)."""
    if rule.__class__ is tuple:
        return rule  # type: ignore[return-value]
    x = node.in_shapes if node.kind in joins else node.in_shapes[0]
    return rule(node.attrs, x, node.out_shape, device)  # type: ignore[operator]


def keeps_output(node: Node) -> bool:
    """Whether autograd keeps node's output for backward (its layer kind's saves rule names it).

    The fx backend lets an activation overwrite a value only where this is
    false (and nothing else reads it), so the rule in the layer table decides
    both the memory figures and where ops run in place.
    """
    rules, _, joins = saves_rules()
    # Devices differ in dropout's mask only, never in whether the output is kept.
    return -1 in applied_saves(rules.get(node.kind, SAVES_INPUT), node, joins, "cpu")[0]


def activation_bytes(saved: list[Saved | None], batch: int) -> int:
    """Total activation memory of a training step at batch size `batch`."""
    values = list(filter(None, saved))  # drops the Nones (a Saved is a non-empty tuple)
    return sum(map(itemgetter(0), values)) * batch + sum(map(itemgetter(1), values))
