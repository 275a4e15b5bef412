"""The static pipeline plan: a network cut into contiguous stages, balanced on MACs, parameters or memory.

A pipeline stage hands exactly one tensor to the next, so a boundary may fall
only after a node where exactly one tensor crosses (Graph.cut_points: never
inside an Inception module or a residual). The plan is exact: among all ways
to cut the network at those points into N stages, it minimises the largest
stage under the chosen measure (a binary search on that bound, each step a
greedy count of the stages it needs, which is optimal because a stage's cost
only grows as it widens). Many plans share that bound, so among them it takes
the one whose boundary tensors are smallest in total (what the pipeline sends
between devices at every micro-batch), by a dynamic programme over the cut
points; the earliest cuts break any remaining tie.

A `cut` marker in the spec (a layer that lowers to nothing: Graph.cut_markers)
pins a boundary right after the layer before it; pins are placed first and
the rest are planned around them. Everything here is a pure function of the graph and its analysis.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from cnnspec.analysis.analysis import Analysis, analyze
from cnnspec.analysis.memory import applied_saves, saves_rules
from cnnspec.diagnostics import Diagnostic, Frame, Note, SpecError
from cnnspec.diagnostics.codes import E701, E702, E703
from cnnspec.ir import AuxOutput, CutMarker, Graph, Node, Shape
from cnnspec.layers.kind import F32, SAVES_INPUT, shape_text
from cnnspec.syntax.source import SourceMap, Span

#: The measures a plan can balance, in the order reports list them.
MEASURES = ("macs", "params", "memory")
#: Above this many steps (stages × cut points) the least-traffic tie-break is skipped: the plan
#: is still optimal on its measure (ResNet-152 in 16 stages takes 1,700).
MAX_TIE_BREAK_WORK = 20_000_000


class PipelineError(Exception):
    """A plan that cannot be made: too many stages, a cut marker where several tensors cross, ...

    code is a diagnostic code (E701-E703); span, where set, is the cut marker at fault.
    """

    def __init__(
        self,
        code: str,
        message: str,
        help: str | None = None,
        span: Span | None = None,
        notes: Sequence[Note] = (),
        trace: tuple[Frame, ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help
        self.span = span
        self.notes = tuple(notes)
        #: The block instances the marker is in, outermost first (as a spec error's trace).
        self.trace = trace

    def diagnostic(self) -> Diagnostic:
        """The error as a diagnostic, pointing at the cut marker where there is one."""
        return Diagnostic(
            self.code,
            self.message,
            self.span,
            notes=list(self.notes),
            help=[self.help] if self.help else [],
            trace=self.trace,
        )

    def spec_error(self, sources: SourceMap, at: Span | None = None) -> SpecError:
        """The error as a SpecError over the checked spec's sources (Checked.program.sources), so that
        the command line renders it as any spec error: file:line:col, the line, a caret, the help.
        at: where an error that is no marker's points (the network's name)."""
        d = self.diagnostic()
        if d.span is None:
            d.span = at
        return SpecError([d], sources)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: a contiguous run of nodes and its totals."""

    index: int
    #: IR node ids, in topological order (the first stage holds the input node).
    nodes: tuple[int, ...]
    #: Trainable parameters.
    params: int
    #: MACs of one sample.
    macs: int
    #: Bytes of activations autograd keeps in this stage at the plan's batch (the tensor it
    #: receives counted when a layer of the stage keeps it), as cnnspec.analysis.memory counts.
    memory: int
    #: The tensor this stage sends to the next, batch excluded; None for the last stage.
    boundary: Shape | None
    #: Module paths of the stage's nodes that own a torch module, in order: its state_dict's prefixes.
    paths: tuple[str, ...]
    #: Display paths of the stage's first and last layers.
    first: str = ""
    last: str = ""
    #: How many layers (nodes other than the input).
    layers: int = 0
    #: Trainable parameters and buffer elements (batch-norm statistics).
    buffers: int = 0
    #: Names of the aux outputs computed in this stage (they leave the stage besides the boundary).
    aux: tuple[str, ...] = ()

    @property
    def boundary_bytes(self) -> int:
        """Bytes of the boundary tensor per sample (fp32); 0 for the last stage."""
        return 0 if self.boundary is None else math.prod(self.boundary) * F32

    def total(self, measure: str) -> int:
        """The stage's total under a measure of MEASURES."""
        return int(getattr(self, measure))


@dataclass(frozen=True)
class PipelinePlan:
    """A network cut into contiguous pipeline stages."""

    stages: tuple[Stage, ...]
    #: The node id after which each boundary falls (len(stages) - 1 of them, ascending).
    cuts: tuple[int, ...]
    #: The measure the plan minimises the largest stage of (MEASURES).
    balance: str
    #: The batch size of the memory figures.
    batch: int
    #: For each measure of MEASURES, the largest stage over the mean stage (1.0 is perfect balance).
    imbalance: dict[str, float]
    #: The cuts the spec's `cut` markers pinned (the node ids they follow), ascending.
    pinned: tuple[int, ...] = ()
    #: How many legal cut points the network has (at most that many + 1 stages).
    legal: int = 0


def plan_pipeline(
    graph: Graph, stages: int, balance: str = "macs", batch: int = 1, analysis: Analysis | None = None
) -> PipelinePlan:
    """Cut graph into `stages` contiguous stages at legal cut points, every `cut` marker a boundary,
    minimising the largest stage under `balance` (macs, params or memory at `batch`).

    Raises PipelineError for a plan that cannot be made (too many stages, a misplaced or surplus
    marker), ValueError for arguments out of range. analysis: the graph's passes, if already run.
    """
    # Mistakes of the caller, not of the spec: the command line reports them as usage errors first.
    if balance not in MEASURES:
        raise ValueError(f"unknown balance {balance!r}: balance on one of {', '.join(MEASURES)}")
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise ValueError(f"a pipeline needs at least 1 stage, got {stages!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"the batch size must be a positive int, got {batch!r}")
    a = analysis if analysis is not None else analyze(graph)
    costs = _Costs(graph, a, batch)
    candidates, pins = _candidates(graph)
    if len(pins) > stages - 1:
        markers = sorted(graph.cut_markers, key=lambda m: m.node)
        raise PipelineError(
            E703,
            f"the spec has {_count(len(pins), 'cut marker')}, {_boundaries(stages)}",
            help=f"plan at least {len(pins) + 1} stages (--pipeline {len(pins) + 1}), or remove cut markers",
            span=markers[stages - 1].span,
            trace=markers[stages - 1].trace,
            notes=[Note(f"cut marker {k + 1} of {len(markers)}", m.span) for k, m in enumerate(markers)],
        )
    if stages > len(candidates) + 1:
        raise PipelineError(
            E701,
            f"`{graph.network}` cannot be cut into {stages} pipeline stages: it has "
            f"{_count(len(candidates), 'legal cut point')}, so at most {_count(len(candidates) + 1, 'stage')}",
            help="a boundary falls only where exactly one tensor crosses (never inside a residual or a "
            "join's branches); plan fewer stages",
        )
    n = len(graph.nodes)
    points = [0, *candidates, n - 1]  # stage k covers the nodes after points[i] up to points[j]
    pinned = [points.index(p) for p in pins]
    cost = costs.segment(balance)
    chosen = _plan(points, pinned, stages, cost, lambda i: costs.boundary_elems(points[i]))
    cuts = tuple(points[i] for i in chosen)
    return _build(graph, a, costs, cuts, balance, batch, tuple(pins), len(candidates))


def legal_cut_points(graph: Graph) -> list[int]:
    """The node ids a boundary may follow: the graph's cut points with a layer before and after them."""
    return _candidates(graph)[0]


# ------------------------------------------------------------------ costs


class _Costs:
    """Each measure of a stage (the nodes after node a up to node b), each in O(1) from prefix sums."""

    def __init__(self, graph: Graph, a: Analysis, batch: int) -> None:
        self.graph = graph
        nodes = graph.nodes
        n = len(nodes)
        params = [p[0] if p else 0 for p in a.params]
        buffers = [p[1] if p else 0 for p in a.params]
        macs = [m or 0 for m in a.macs]
        memory = [s.at(batch) if s else 0 for s in a.saved]
        self.prefix = {
            "params": _prefix(params),
            "buffers": _prefix(buffers),
            "macs": _prefix(macs),
            "memory": _prefix(memory),
        }
        self.batch = batch
        # The memory pass counts a storage once, at the first node that keeps it. A stage receives
        # its input as a storage of its own: when a layer of the stage keeps it and the pass counted
        # it in an earlier stage, the stage pays for it again (its own copy, sent by the previous one).
        self._keepers, self._root, self._first = _keepers(graph)
        self._n = n

    def segment(self, measure: str) -> Callable[[int, int], int]:
        """cost(a, b): the measure's total over the nodes after node a up to node b."""
        pre = self.prefix[measure]
        if measure != "memory":
            return lambda a, b: pre[b + 1] - pre[a + 1]
        return lambda a, b: pre[b + 1] - pre[a + 1] + self.received(a, b)

    def total(self, measure: str, a: int, b: int) -> int:
        """The measure's total over the nodes after node a up to node b (buffers too)."""
        pre = self.prefix[measure]
        extra = self.received(a, b) if measure == "memory" else 0
        return pre[b + 1] - pre[a + 1] + extra

    def received(self, a: int, b: int) -> int:
        """Bytes a stage after node a up to node b keeps of the tensor it receives that the memory
        pass counted in an earlier stage (0 for the first stage)."""
        if a == 0:
            return 0  # the first stage holds the input node itself: the pass's counting is its own
        root = self._root[a]
        if self._first.get(root, self._n) > a:
            return 0  # first kept inside this stage (or never): already counted here
        keepers = self._keepers[root]
        i = bisect_right(keepers, a)
        if i < len(keepers) and keepers[i] <= b:
            return math.prod(self.graph.nodes[root].out_shape) * F32 * self.batch
        return 0

    def boundary_elems(self, p: int) -> int:
        """Elements per sample of the tensor crossing the cut after node p."""
        return math.prod(self.graph.nodes[p].out_shape)


def _prefix(values: list[int]) -> list[int]:
    out = [0]
    for v in values:
        out.append(out[-1] + v)
    return out


def _keepers(graph: Graph) -> tuple[dict[int, list[int]], list[int], dict[int, int]]:
    """Which nodes keep each storage for backward (cnnspec.analysis.memory's rules): storage root ->
    the node ids keeping it (ascending), node id -> its output's storage root, root -> first keeper."""
    nodes = graph.nodes
    root = list(range(len(nodes)))
    rules, view_kinds, joins = saves_rules()
    keepers: dict[int, list[int]] = {}
    for node in graph.layers():
        nid, inputs = node.id, node.inputs
        if node.kind in view_kinds and inputs:
            root[nid] = root[inputs[0]]
        positions = applied_saves(rules.get(node.kind, SAVES_INPUT), node, joins, "cpu")[0]
        for pos in positions:
            key = root[nid] if pos == -1 else root[inputs[pos]]
            ids = keepers.setdefault(key, [])
            if not ids or ids[-1] != nid:
                ids.append(nid)
    first = {key: ids[0] for key, ids in keepers.items()}
    return keepers, root, first


# ------------------------------------------------------------ cut points


def _candidates(graph: Graph) -> tuple[list[int], list[int]]:
    """The node ids a boundary may follow (a layer before and after it), and those the spec's `cut`
    markers pin (a subset, ascending).

    Raises PipelineError (E702) for a marker where more than one tensor crosses, or one that would
    leave a stage without a layer.
    """
    nodes = graph.nodes
    last = len(nodes) - 1
    # The last stage computes the network's output: aux heads written after it belong to that stage.
    end = min(last, graph.output)
    cuts = graph.cut_points()
    legal = set(cuts)
    markers = sorted(graph.cut_markers, key=lambda m: m.node)  # stable: one place keeps the spec's order
    for m in markers:
        if m.node not in legal:
            raise _crossing_error(graph, m)
    for m in markers:
        if m.node == 0:
            raise _empty_stage(m, "has no layer before it: the first stage would be empty")
        if m.node == last:
            raise _empty_stage(m, "has no layer after it: the last stage would be empty")
        if m.node >= end:
            raise _empty_stage(
                m,
                "follows the network's output: the stage after it would hold only auxiliary heads",
                help="the last stage computes the output: put the marker before the layer that gives it, or remove it",
            )
    for before, m in pairwise(markers):
        if m.node == before.node:
            raise _empty_stage(
                m,
                f"is in the same place as another, right after {_name(nodes[m.node])}: the stage between "
                "them would be empty",
                [Note("the other cut marker", before.span)],
            )
    candidates = [p for p in cuts if 0 < p < end]
    return candidates, [m.node for m in markers]


def _empty_stage(
    marker: CutMarker,
    why: str,
    notes: Sequence[Note] = (),
    help: str = "put the marker between two layers, or remove it",
) -> PipelineError:
    return PipelineError(
        E702,
        f"this cut marker {why}",
        help=help,
        span=marker.span,
        trace=marker.trace,
        notes=notes,
    )


def _crossing_error(graph: Graph, marker: CutMarker) -> PipelineError:
    """E702 for a marker after which more than one tensor crosses: each named with its producer."""
    nodes = graph.nodes
    p = marker.node
    producers = sorted({u for u, w in graph.g.edges() if u <= p < w})
    texts = [f"{shape_text(nodes[u].out_shape)} from {_name(nodes[u])}" for u in producers]
    notes = [Note(f"{shape_text(nodes[u].out_shape)} comes from {_name(nodes[u])}", nodes[u].span) for u in producers]
    if len(texts) == 1:
        # One tensor crosses, but not the output of the layer before the marker: no later layer reads
        # that (the end of an aux head), and a stage hands on only its last layer's output.
        message = (
            f"a pipeline boundary at this cut marker would pass {texts[0]}, not the output of {_name(nodes[p])} "
            "before the marker, which no later layer reads"
        )
        help = "a stage hands the next only the output of its last layer: move the marker after a layer the next reads"
    else:
        listed = " and ".join(texts) if len(texts) == 2 else ", ".join(texts[:-1]) + " and " + texts[-1]
        message = f"a pipeline boundary at this cut marker would pass {len(texts)} tensors, not one: {listed}"
        help = "a stage hands one tensor to the next: move the marker before or after the residual or join"
    head = _aux_head(graph, p)
    if head is not None:
        help = (
            f"an aux head branches off the main path and ends in its own output (`{head.name}`), so a stage "
            "boundary cannot fall inside it or at its end: put the marker before the `aux` block or in the main path"
        )
        notes.append(Note(f"the aux head `{head.name}`", head.span))
    return PipelineError(E702, message, help=help, span=marker.span, trace=marker.trace, notes=notes)


def _aux_head(graph: Graph, node: int) -> AuxOutput | None:
    """The aux output whose head holds node (a node the main output does not need), if any."""
    if node in graph.ancestors(graph.output):
        return None
    return next((a for a in graph.aux if node in graph.ancestors(a.node)), None)


def _name(node: Node) -> str:
    return "the input" if node.id == 0 else f"`{node.path}` ({node.kind})"


def _boundaries(stages: int) -> str:
    """How many boundaries a plan of `stages` has, said after "the spec has N cut markers, "."""
    if stages == 1:
        return "but a plan of 1 stage has no boundary"
    return f"more than the {_count(stages - 1, 'boundary', 'boundaries')} of {stages} stages"


def _count(n: int, what: str, plural: str = "") -> str:
    if plural:
        return f"{n} {what if n == 1 else plural}"
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


# ------------------------------------------------------------- planning


def _plan(
    points: list[int],
    pinned: list[int],
    stages: int,
    cost: Callable[[int, int], int],
    boundary: Callable[[int], int],
) -> list[int]:
    """Indices into points of the stages-1 cuts: every pinned index among them, each stage (points[i],
    points[j]] at most the least possible bound on cost, and the boundaries' sum the least among those."""
    m = len(points) - 1  # indices 1..m-1 are cut candidates; m is the network's end
    if stages == 1:
        return []
    # The pin each index may not pass: a stage ending at j starts at or after the last pin before j.
    pin_before = [0] * (m + 1)
    last = 0
    pinned_set = set(pinned)
    for j in range(1, m + 1):
        pin_before[j] = last
        if j in pinned_set:
            last = j

    def seg(i: int, j: int) -> int:
        return cost(points[i], points[j])

    def greedy(bound: int) -> list[int] | None:
        """The ends of the fewest stages each at most bound, each as long as it can be (None if a
        single step exceeds the bound); optimal because a stage's cost grows as it widens."""
        ends, i = [], 0
        while i < m:
            j = i + 1
            if seg(i, j) > bound:
                return None
            while j < m and j not in pinned_set and seg(i, j + 1) <= bound:
                j += 1
            ends.append(j)
            i = j
        return ends

    lo = max(seg(i, i + 1) for i in range(m))
    hi = seg(0, m)
    while lo < hi:
        mid = (lo + hi) // 2
        ends = greedy(mid)
        if ends is not None and len(ends) <= stages:
            hi = mid
        else:
            lo = mid + 1
    bound = lo
    if stages * m > MAX_TIE_BREAK_WORK:
        # Too big for the programme below (a very long chain cut into very many stages): the greedy
        # stages under the least bound, cut further where the tensors are smallest. Splitting a stage
        # never raises the bound, so the plan is still optimal; only its traffic may not be least.
        ends = greedy(bound)
        assert ends is not None
        chosen = set(ends[:-1])
        spare = sorted((j for j in range(1, m) if j not in chosen), key=lambda j: (boundary(j), j))
        return sorted(chosen | set(spare[: stages - 1 - len(chosen)]))
    # start[j]: the smallest i with stage (i, j] within the bound and passing no pin; it never
    # decreases as j grows, so each layer of the programme is a sliding-window minimum.
    start = [0] * (m + 1)
    i = 0
    for j in range(1, m + 1):
        i = max(i, pin_before[j])
        while seg(i, j) > bound:
            i += 1
        start[j] = i
    inf = float("inf")
    best: list[float] = [0.0] + [inf] * m  # best[j]: least boundary sum of k stages ending at j
    parents: list[list[int]] = []
    for k in range(1, stages + 1):
        nxt: list[float] = [inf] * (m + 1)
        parent = [-1] * (m + 1)
        window: deque[int] = deque()
        i = 0
        for j in range(1, m + 1):
            while i < j:  # add candidates i < j to the window, keeping it increasing in best
                while window and best[window[-1]] > best[i]:
                    window.pop()
                window.append(i)
                i += 1
            while window and window[0] < start[j]:
                window.popleft()
            if window and best[window[0]] < inf and (k < stages) == (j < m):
                nxt[j] = best[window[0]] + (boundary(j) if j < m else 0)
                parent[j] = window[0]
        parents.append(parent)
        best = nxt
    assert best[m] < inf, "the bound admits a plan by construction"
    chosen: list[int] = []
    j = m
    for k in range(stages - 1, -1, -1):
        j = parents[k][j]
        if k:
            chosen.append(j)
    return sorted(chosen)


# ---------------------------------------------------------------- result


def _build(
    graph: Graph,
    a: Analysis,
    costs: _Costs,
    cuts: tuple[int, ...],
    balance: str,
    batch: int,
    pins: tuple[int, ...],
    legal: int,
) -> PipelinePlan:
    nodes = graph.nodes
    aux_at = {aux.node: aux.name for aux in graph.aux}
    bounds = [0, *cuts, len(nodes) - 1]
    stages: list[Stage] = []
    for k in range(len(bounds) - 1):
        lo, hi = bounds[k], bounds[k + 1]
        ids = tuple(range(0 if k == 0 else lo + 1, hi + 1))
        layers = [nodes[i] for i in ids if i > 0]
        stages.append(
            Stage(
                index=k,
                nodes=ids,
                params=costs.total("params", lo, hi),
                macs=costs.total("macs", lo, hi),
                memory=costs.total("memory", lo, hi),
                boundary=nodes[hi].out_shape if k < len(bounds) - 2 else None,
                paths=tuple(nodes[i].path for i in ids if nodes[i].has_module),
                first=layers[0].path if layers else "",
                last=layers[-1].path if layers else "",
                layers=len(layers),
                buffers=costs.total("buffers", lo, hi),
                aux=tuple(aux_at[i] for i in ids if i in aux_at),
            )
        )
    imbalance = {m: _imbalance([s.total(m) for s in stages]) for m in MEASURES}
    return PipelinePlan(
        stages=tuple(stages),
        cuts=cuts,
        balance=balance,
        batch=batch,
        imbalance=imbalance,
        pinned=pins,
        legal=legal,
    )


def _imbalance(totals: list[int]) -> float:
    """The largest total over the mean; 1.0 when every total is 0."""
    total = sum(totals)
    return 1.0 if total == 0 else max(totals) * len(totals) / total


__all__ = ["MEASURES", "PipelineError", "PipelinePlan", "Stage", "legal_cut_points", "plan_pipeline"]
