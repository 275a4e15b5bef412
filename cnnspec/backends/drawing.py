"""What a diagram draws: the IR and its analysis as drawn nodes (units) and frames (clusters).

A unit is a layer, a chain of a layer and the norms and activations it alone
feeds (drawn as one node), or a block collapsed at the depth asked; a cluster
is a block instance, a named group, a fold of identical instances or an aux
head. Labels, fills and the pipeline stage of each come from the layer table
and the analysis. diagram.py lays these out as DOT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnspec.analysis import Analysis
from cnnspec.analysis.aux import aux_heads
from cnnspec.analysis.pipeline import PipelinePlan
from cnnspec.ir import Graph, Node
from cnnspec.layers.kind import Attrs, LayerKind
from cnnspec.layers.registry import is_join, lookup
from cnnspec.views.fold import Item, describe
from cnnspec.views.format import human, shape_text

#: Categories (the layer table's) of the ops drawn inside the node of the layer they follow,
#: when that layer feeds only them.
_POST_OPS = ("norm", "activation")
#: Fill colour per category of the layer table; anything else is white.
_COLOURS = {
    "conv": "#dbe9f6",
    "linear": "#e8dcf2",
    "pool": "#fde5cc",
    "norm": "#fff5c2",
    "activation": "#e3f4e1",
    "regulariser": "#eeeeee",
    "reshape": "#eeeeee",
}
_JOIN_FILL = "#f2f2f2"
#: A folded run: its node, or its frame's border and fill.
_FOLD_FILL = "#cfe3f7"
_FOLD_COLOUR = "#4a7fb5"
_FOLD_FRAME_FILL = "#f1f7fd"
#: Auxiliary heads: frame, fill, and the colour of the edges into and inside them.
AUX_COLOUR = "#d9822b"
_AUX_FILL = "#fff6ec"
OUTPUT_FILL = "#ffe0b8"
SKIP_COLOUR = "#d62728"
#: Pipeline stages (`--pipeline N`): each stage's colour, for the borders of its nodes, the edge
#: into it and its legend row; they repeat after eight (the legend numbers the stages). None is
#: the skip edges' red or the aux heads' orange.
STAGE_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def _kind(node: Node) -> LayerKind:
    kind = lookup(node.kind)
    assert kind is not None, node.kind  # elaboration made the node from the table
    return kind


def op_text(node: Node) -> str:
    """The op with its key arguments, the way papers label boxes: "conv 3×3, 64, /2" (the table's label)."""
    return _kind(node).label_text(Attrs(node.attrs))


#: Compact: the short names papers give the norms and activations drawn inside their layer's node.
_SHORT = {"batchnorm": "BN", "relu": "ReLU", "layernorm": "LN", "groupnorm": "GN", "sigmoid": "σ", "gelu": "GELU",
          "silu": "SiLU", "relu6": "ReLU6", "tanh": "tanh"}  # fmt: skip


def _wrap(prefix: str, ops: list[str], width: int = 60) -> list[str]:
    """ops joined by " · " after prefix, in lines of about `width` characters."""
    lines = [prefix.rstrip()]
    for op in ops:
        if lines[-1] != prefix.rstrip() and len(lines[-1]) + 3 + len(op) > width:
            lines[-1] += " ·"
            lines.append(op)
        else:
            lines[-1] += (" · " if lines[-1] != prefix.rstrip() else " ") + op
    return lines


def _where(node: Node) -> str:
    """The node's module path and a space, or nothing for a display name like "9" (flatten, joins)."""
    if not node.has_module and node.path.rsplit(".", 1)[-1].isdigit():
        return ""
    return node.path + " "


@dataclass
class Unit:
    """One drawn node: the graph nodes it stands for and its label."""

    dot_id: str
    node_ids: list[int]
    lines: list[str]  # first line bold
    fill: str = "#ffffff"
    shape: str = "box"
    style: str = "rounded,filled"
    peripheries: int = 1
    #: The border's colour: its pipeline stage's (STAGE_COLOURS), "" for the default.
    colour: str = ""


@dataclass
class Cluster:
    """A drawn group: its label and what it contains (units and clusters, in order)."""

    dot_id: str
    label: str
    items: list[Unit | Cluster] = field(default_factory=list)
    style: str = "rounded"
    colour: str = "#9a9a9a"
    fill: str = ""
    #: Units held side by side in this order (the first node of each branch of a join).
    row: list[str] = field(default_factory=list)
    #: Further lines of the title (a fold's paths and shapes), in the normal weight.
    sub: list[str] = field(default_factory=list)

    def node_ids(self) -> list[int]:
        """The graph nodes drawn inside, at any depth."""
        return [i for it in self.items for i in (it.node_ids if isinstance(it, Unit) else it.node_ids())]


class Drawing:
    """What one diagram draws, built from the IR and its analysis: a Unit per drawn node (a layer, a
    fused chain, a block collapsed at the depth asked), a Cluster per drawn group, fold or aux head."""

    def __init__(
        self,
        graph: Graph,
        analysis: Analysis,
        depth: int | None,
        expand: bool,
        params: bool,
        compact: bool = False,
        plan: PipelinePlan | None = None,
    ) -> None:
        self.graph, self.analysis = graph, analysis
        #: The pipeline stage of each node, with a plan.
        self.stage_of = {i: s.index for s in plan.stages for i in s.nodes} if plan else {}
        self.depth, self.expand, self.params, self.compact = depth, expand, params, compact
        self.unit_of: dict[int, str] = {}
        self.n_units = 0
        self.n_clusters = 0
        #: Aux head of each node off the main path, and the output node drawn for each aux output.
        self.owner = aux_heads(graph)
        self.aux_out: dict[str, str] = {}
        #: Per node inside a drawn fold: fold number -> which instance it lies in (0: the one drawn).
        self.instance_of: dict[int, dict[int, int]] = {}
        self.n_folds = 0

    # ------------------------------------------------------------ units

    def _totals(self, ids: list[int]) -> tuple[int, int]:
        p = sum((self.analysis.params[i] or (0, 0))[0] for i in ids)
        m = sum(self.analysis.macs[i] or 0 for i in ids)
        return p, m

    def _stats_line(self, ids: list[int]) -> list[str]:
        if not self.params:
            return []
        p, m = self._totals(ids)
        if not p and not m:
            return []
        return [f"{p:,} params · {human(m)} MACs"]

    def unit(self, ids: list[int], lines: list[str], **style: object) -> Unit:
        """A new drawn node for the graph nodes ids, bordered in its pipeline stage's colour."""
        self.n_units += 1
        unit = Unit(f"n{self.n_units}", ids, lines, **style)  # type: ignore[arg-type]
        stages = sorted({self.stage_of[i] for i in ids if i in self.stage_of})
        if stages:
            unit.colour = STAGE_COLOURS[stages[0] % len(STAGE_COLOURS)]
            if len(stages) > 1:  # a group drawn as one node (--depth) across a boundary
                unit.lines.append(f"pipeline stages {stages[0]}-{stages[-1]}")
        for i in ids:
            self.unit_of[i] = unit.dot_id
        return unit

    def _layer_unit(self, chain: list[Node]) -> Unit:
        head, last = chain[0], chain[-1]
        post = [op_text(n) for n in chain[1:]]
        if self.compact:
            post = [_SHORT.get(op, op) for op in post]
        ops = " · ".join([op_text(head), *post])
        # Compact: the frames name the groups, so a layer's path gives way to its shape alone.
        where = f"{'' if self.compact else _where(head)}→ {shape_text(last.out_shape)}"
        lines = [ops, where, *self._stats_line([n.id for n in chain])]
        kind = _kind(head)
        if kind.is_join:
            return self.unit([n.id for n in chain], lines, fill=_JOIN_FILL, shape="box", style="rounded,filled,bold")
        fill = _COLOURS.get(kind.category, "#ffffff")
        return self.unit([n.id for n in chain], lines, fill=fill)

    def _block_unit(self, item: Item) -> Unit:
        ids = item.node_ids
        last = self.graph.nodes[ids[-1]]
        if item.kind == "fold" and "channels" in item.varies:
            # No instance is drawn to stand for the others, so the node says how the channels run
            # from first to last and what each instance does.
            first = self.graph.nodes[ids[0]]
            title = describe(item)
            where = f"{item.path}: {shape_text(first.in_shapes[0])} → {shape_text(last.out_shape)}"
            each = _wrap(
                "each: ",
                [
                    op_text(self.graph.nodes[i])
                    for i in item.instances[0].node_ids
                    if self.graph.nodes[i].kind != "identity"
                ],
            )
            return self.unit(ids, [title, where, *each, *self._stats_line(ids)], fill="#d8ecd6", peripheries=2)
        if item.kind == "fold":  # identical, or differing in rates alone (the title says so)
            first_path = item.instances[0].path
            title = describe(item)
            where = f"{item.path} (each like {first_path}) → {shape_text(last.out_shape)}"
            return self.unit(ids, [title, where, *self._stats_line(ids)], fill=_FOLD_FILL, peripheries=2)
        return self.unit(
            ids,
            [item.name, f"{item.path} → {shape_text(last.out_shape)}", *self._stats_line(ids)],
            fill="#f7f1e3",
            shape="box3d",
            style="filled",
        )

    # --------------------------------------------------------- structure

    def _fusable(self, prev: Node, node: Node) -> bool:
        return (
            not self.expand
            and _kind(node).category in _POST_OPS
            and node.inputs == (prev.id,)
            and self.graph.users(prev.id) == [node.id]
            and prev.scope == node.scope
            and self.stage_of.get(prev.id) == self.stage_of.get(node.id)
        )

    def _joins_branches(self, item: Item) -> bool:
        """Whether the group ends in a join of several branches (an Inception module)."""
        last = self.graph.nodes[item.last]
        return is_join(last.kind) and len(last.inputs) > 2

    def items(self, items: list[Item], level: int, branches: bool = False, head: str = "") -> list[Unit | Cluster]:
        """The drawn nodes and clusters of a list of items.

        branches: the items are the branches of a join; a branch drawn as
        plain nodes is not framed, so that its first node can be held in a
        row with the other branches' (Graphviz cannot order clusters, nor
        rank nodes of different clusters together). head: the aux head the
        caller is already framing.
        """
        out: list[Unit | Cluster] = []
        chain: list[Node] = []

        def flush() -> None:
            if chain:
                out.append(self._layer_unit(list(chain)))
                chain.clear()

        for item in items:
            if item.kind == "layer":
                assert item.node is not None
                if chain and self._fusable(chain[-1], item.node):
                    chain.append(item.node)
                    continue
                flush()
                chain.append(item.node)
                continue
            flush()
            if item.kind == "fold" and self.expand:
                out.extend(self.items(item.instances, level, head=head))
            elif self.depth is not None and level >= self.depth:
                out.append(self._block_unit(item))
            elif item.kind == "fold":
                out.append(self._fold_cluster(item, level, head))
            else:
                drawn = self._cluster(item, level, head)
                if (
                    branches
                    and isinstance(drawn, Cluster)
                    and all(isinstance(x, Unit) for x in drawn.items)
                    and not drawn.fill
                ):
                    # Every node's label names its branch (inception3a.branch2.0.conv), so the frame can go.
                    out.extend(drawn.items)
                else:
                    out.append(drawn)
        flush()
        return self._frame_aux(out, head)

    def _head_of(self, ids: list[int]) -> str:
        """The aux head all of these nodes lie in, or ""."""
        heads = {self.owner.get(i, "") for i in ids}
        return heads.pop() if len(heads) == 1 else ""

    def _frame_aux(self, drawn: list[Unit | Cluster], head: str) -> list[Unit | Cluster]:
        """Frame each run of drawn items that lies in one aux head (other than `head`, framed above)."""
        if not self.owner:
            return drawn
        out: list[Unit | Cluster] = []
        i = 0
        while i < len(drawn):
            name = self._head_of(drawn[i].node_ids if isinstance(drawn[i], Unit) else drawn[i].node_ids())
            if not name or name == head:
                out.append(drawn[i])
                i += 1
                continue
            j = i + 1
            while (
                j < len(drawn)
                and self._head_of(drawn[j].node_ids if isinstance(drawn[j], Unit) else drawn[j].node_ids()) == name
            ):
                j += 1
            out.append(self._aux_cluster(name, drawn[i:j]))
            i = j
        return out

    def _aux_cluster(self, name: str, run: list[Unit | Cluster]) -> Cluster:
        """An aux head's frame: its drawn items, then the output node of its aux output."""
        aux = next(a for a in self.graph.aux if a.name == name)
        shape = shape_text(self.graph.nodes[aux.node].out_shape)
        out = self.unit(
            [],
            [f"{name} output {shape}", f"auxiliary, loss weight {aux.weight:g}, training only"],
            fill=OUTPUT_FILL,
            shape="box",
            style="rounded,filled,bold",
        )
        self.aux_out[name] = out.dot_id
        if len(run) == 1 and isinstance(run[0], Cluster):
            # The head is one group (GoogLeNet's aux1: AuxHead): restyle its frame rather than nest one.
            frame = run[0]
            frame.label = f"{frame.label} (aux head, ×{aux.weight:g})"
        else:
            self.n_clusters += 1
            frame = Cluster(f"cluster_{self.n_clusters}", f"{name}: aux head (×{aux.weight:g})", list(run))
        frame.style, frame.colour, frame.fill = "rounded,dashed,filled", AUX_COLOUR, _AUX_FILL
        frame.items.append(out)
        return frame

    def _cluster(self, item: Item, level: int, head: str = "") -> Unit | Cluster:
        # A group wholly inside one aux head is framed as that head by the caller: do not frame it twice.
        own = self._head_of(item.node_ids) or head
        joins = self._joins_branches(item)
        inner = self.items(item.children, level + 1, branches=joins, head=own)
        if len(inner) == 1 and isinstance(inner[0], Unit):
            # A group drawn as one node needs no frame around it; its node says where it is.
            unit = inner[0]
            if unit.lines[1].startswith("→"):  # compact: the layer's path was left out
                unit.lines[1] = f"{item.path} {unit.lines[1]}"
            elif not unit.lines[1].startswith(item.path):
                unit.lines[1] = f"{item.path}: {unit.lines[1]}"
            return unit
        assert item.group is not None
        label = item.path if item.group.kind != "block" else f"{item.path}: {describe(item)}"
        if len(inner) == 1 and isinstance(inner[0], Cluster) and inner[0].sub:
            # A group that is one folded run (a CIFAR ResNet's stage of identical blocks): one frame
            # says both, rather than a frame around a frame.
            fold = inner[0].label  # "BasicBlock ×3", "DenseLayer ×6 (channels vary)"
            inner[0].label = (
                f"{item.path}: {item.group.name}: {fold}" if item.group.kind == "block" else f"{item.path}: {fold}"
            )
            return inner[0]
        self.n_clusters += 1
        cluster = Cluster(f"cluster_{self.n_clusters}", label, inner)
        if joins:
            cluster.row = self._branch_row(item, inner)
        return cluster

    def _fold_cluster(self, item: Item, level: int, head: str) -> Unit | Cluster:
        """A folded run drawn as its first instance, framed, the frame saying how many it stands for.

        The other instances' nodes are drawn by the first's units (edges between
        instances are left out by to_dot), so the run reads as one block with its
        own wiring and skip, and the edges out of it carry the last instance's shapes.
        """
        rep = item.instances[0]
        own = self._head_of(item.node_ids) or head
        joins = self._joins_branches(rep)
        inner = self.items(rep.children, level + 1, branches=joins, head=own)
        self.n_folds += 1
        for k, inst in enumerate(item.instances):
            for pos, nid in enumerate(inst.node_ids):
                self.instance_of.setdefault(nid, {})[self.n_folds] = k
                if k:
                    self.unit_of[nid] = self.unit_of[rep.node_ids[pos]]
        first = self.graph.nodes[item.node_ids[0]]
        last = self.graph.nodes[item.last]
        if "channels" in item.varies:
            # The instance drawn has the first one's channels: say how they run over the whole fold.
            sub = [
                f"{item.path}, channels vary: {shape_text(first.in_shapes[0])} → {shape_text(last.out_shape)}",
                f"drawn: {rep.path}",
            ]
        else:
            sub = [f"{item.path} (each like {rep.path}) → {shape_text(last.out_shape)}"]
        if len(inner) == 1 and isinstance(inner[0], Unit):
            # One node stands for the instance (two convs in a row of an Inception branch): a
            # double border says how many, with no frame around it.
            unit = inner[0]
            unit.lines = [describe(item), sub[0], f"each: {unit.lines[0]}", *self._stats_line(item.node_ids)]
            unit.fill, unit.peripheries = _FOLD_FILL, 2
            return unit
        self.n_clusters += 1
        cluster = Cluster(
            f"cluster_{self.n_clusters}",
            describe(item),
            inner,
            style="rounded,filled,bold",
            colour=_FOLD_COLOUR,
            fill=_FOLD_FRAME_FILL,
            sub=sub + self._stats_line(item.node_ids),
        )
        if joins:
            cluster.row = self._branch_row(rep, inner)
        return cluster

    def _branch_row(self, item: Item, inner: list[Unit | Cluster]) -> list[str]:
        """The units that start a branch of the group's join, in spec order (the order drawn)."""
        inside = set(item.node_ids)
        row = []
        for unit in inner:
            if isinstance(unit, Unit) and unit.node_ids:
                first = self.graph.nodes[unit.node_ids[0]]
                if any(i not in inside for i in first.inputs):
                    row.append(unit.dot_id)
        return row if len(row) > 1 else []
