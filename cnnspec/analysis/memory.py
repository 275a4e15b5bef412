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
concat and flatten nothing. benchmarks/bench_memory.py and
tests/test_analysis.py check the sum against what autograd really saves.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from operator import itemgetter
from typing import NamedTuple

from cnnspec.ir import Copy, Graph, Node
from cnnspec.layers.registry import F32, SAVES_INPUT, LayerKind, Saves, per_table


class Saved(NamedTuple):
    """Bytes one node makes autograd keep: per sample (scales with B) and fixed."""

    per_sample: int
    fixed: int

    def at(self, batch: int) -> int:
        """Bytes at batch size `batch`."""
        return self.per_sample * batch + self.fixed


@per_table
def _rules(kinds: dict[str, LayerKind]) -> tuple[dict[str, Saves | Callable[..., Saves]], set[str], set[str]]:
    """Each layer kind's saves rule (LayerKind.saves), the kinds whose output is a view of
    their input, and the joins (whose rules take the tuple of input shapes)."""
    rules = {name: k.saves for name, k in kinds.items()}
    views = {name for name, k in kinds.items() if k.view}
    joins = {name for name, k in kinds.items() if k.arity == "many"}
    return rules, views, joins


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
    prod, make = math.prod, tuple.__new__
    rules, view_kinds, joins = _rules()

    def visit(first: int, stop: int) -> None:
        for node in nodes[first:stop]:
            nid, kind, inputs = node.id, node.kind, node.inputs
            if kind in view_kinds and inputs:
                storage[nid] = storage[inputs[0]]
                views.append(nid)
            elif kind == "input":
                continue
            rule = rules.get(kind, SAVES_INPUT)
            if rule.__class__ is not tuple:  # most ops keep the same whatever they are given: no call
                rule = _applied(rule, node, joins, device)
            positions, per_sample, fixed = rule  # type: ignore[misc]
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


def _applied(rule: Saves | Callable[..., Saves], node: Node, joins: set[str], device: str) -> Saves:
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
    rules, _, joins = _rules()
    # Devices differ in dropout's mask only, never in whether the output is kept.
    return -1 in _applied(rules.get(node.kind, SAVES_INPUT), node, joins, "cpu")[0]


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
