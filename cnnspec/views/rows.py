"""The report's data as plain records: totals and rows, built from the graph and the pass results.

The text summary reads these directly; cnnspec.views.report wraps them in the
pydantic Report, the boundary of `--json` and its schema. Nothing here imports
pydantic, so that `cnnspec check` without --json does not pay for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cnnspec.analysis import Analysis
from cnnspec.ir import Graph, Node
from cnnspec.layers.registry import lookup
from cnnspec.views.fold import Item, auto_depth, build_tree, describe, visible

if TYPE_CHECKING:
    from cnnspec.diagnostics import Diagnostic

#: Stated once in every summary and report: what one MAC and one FLOP are.
MAC_CONVENTION = (
    "1 MAC = one multiply-add of a convolution or linear layer, per sample; FLOPs = 2 × MACs; "
    "bias, normalisation, activation, pooling and joins are not counted"
)
#: Added to MAC_CONVENTION for a network with attention (cnnspec.layers.attention), and only then, so
#: that the summaries of networks without it read as before.
ATTENTION_CONVENTION = "; attention counts its projections as linear layers and QKᵀ and AV as N·N·D each"
#: What the activation memory counts (docs/analysis.md).
ACTIVATION_CONVENTION = (
    "fp32 tensors autograd saves for backward in one training step, input included, each storage once"
)
#: Tables taller than this open fewer levels of groups unless --depth or --expand says otherwise.
MAX_ROWS = 60


#: Read by pydantic where the Report serialises a row: the schema (report_schema) requires every
#: field, since the dump always has them all, defaults included. A plain dict, as pydantic accepts
#: for a stdlib dataclass, so that this module does not import pydantic.
_JSON_CONFIG = {"json_schema_serialization_defaults_required": True}


@dataclass(slots=True, kw_only=True)
class LayerRow:
    """One layer or join of the network."""

    __pydantic_config__ = _JSON_CONFIG

    path: str
    op: str
    output_shape: list[int]
    params: int
    buffers: int
    macs: int
    flops: int
    #: Receptive field (height, width) in input pixels and the jump (effective stride); both [] where
    #: not defined (past a layer that moves, merges, wraps or resamples positions: a permute, an upsample).
    receptive_field: list[int]
    jump: list[int]
    #: Bytes autograd keeps for backward because of this layer, at the report's batch size.
    activation_bytes: int
    #: Output tensor size in bytes (fp32) at the report's batch size.
    output_bytes: int
    scope: str
    inputs: list[str]
    skip: list[int]
    #: The aux output whose head this layer belongs to ("" on the main path).
    aux: str = ""
    file: str
    line: int
    col: int


@dataclass(slots=True, kw_only=True)
class GroupRow:
    """A block instance or named group, with the totals of the layers inside."""

    __pydantic_config__ = _JSON_CONFIG

    path: str
    kind: str
    name: str
    layers: int
    params: int
    buffers: int
    macs: int
    output_shape: list[int]
    receptive_field: list[int]
    activation_bytes: int


@dataclass(slots=True, kw_only=True)
class FoldRow:
    """A run of consecutive block instances shown as one ("Bottleneck ×35").

    identical: the instances match layer for layer. Otherwise varies says what
    differs, "channels" (the channel counts: "DenseLayer ×6 (channels vary)"),
    "rates" (dropout and stochastic depth rates: "MBConv ×3 (rates vary)"),
    "shifts" (window attention's shifts: "SwinTransformerBlock ×6 (shifts vary)"),
    or several of these; nothing else may.
    """

    __pydantic_config__ = _JSON_CONFIG

    path: str
    block: str
    count: int
    instances: list[str]
    params: int
    macs: int
    output_shape: list[int]
    identical: bool = True
    varies: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class TableRow:
    """One row of the summary table as shown at the report's depth."""

    __pydantic_config__ = _JSON_CONFIG

    level: int
    kind: str  # "layer", "group" (collapsed), "open" (an opened group's header), "fold"
    path: str
    op: str
    count: int
    output_shape: list[int]
    params: int
    macs: int
    receptive_field: list[int]
    activation_bytes: int
    #: The aux output whose head this row lies in ("" on the main path).
    aux: str = ""
    #: How the summary names the row: `path`, except for an unnamed layer (ReportData.labels).
    label: str = ""
    #: The totals of the row's item. Equal to params, macs and activation_bytes on every row but an
    #: opened group's, whose own figures are 0 (the rows under it carry them, so that the columns
    #: still add up to the network's totals) and whose subtotals these are.
    subtotal_params: int = 0
    subtotal_macs: int = 0
    subtotal_activation_bytes: int = 0


@dataclass(slots=True, kw_only=True)
class InitRow:
    """An `init` rule as the compiled module applies it, in the order written (a later rule
    redraws what an earlier one drew).

    layers: how many layers of `kind` it selects (those whose module path matches
    `pattern`, when it has one); a selected layer without the tensor (a conv with
    bias = false and target bias) is left as it is.
    """

    __pydantic_config__ = _JSON_CONFIG

    kind: str
    pattern: str | None
    target: str
    scheme: str
    args: dict[str, object]
    layers: int
    file: str
    line: int
    col: int


@dataclass(slots=True, kw_only=True)
class AuxRow:
    """An auxiliary output: returned in training mode only, weighted in the loss."""

    __pydantic_config__ = _JSON_CONFIG

    name: str
    #: The module path of the layer whose output it is.
    node: str
    #: How the summary names that layer: node, except for an unnamed layer (ReportData.labels).
    node_label: str = ""
    output_shape: list[int]
    weight: float
    #: Totals over the layers of its head (the layers only it depends on).
    layers: int
    params: int
    macs: int
    file: str
    line: int
    col: int


@dataclass(slots=True, kw_only=True)
class StageRow:
    """A run of consecutive layers at one spatial resolution (the head: flat features).

    The layers of an aux head are left out of the main path's runs and make
    one row of their own, whose resolution is "aux1 head" and `aux` its name.
    """

    __pydantic_config__ = _JSON_CONFIG

    resolution: str
    first: str
    last: str
    layers: int
    output_shape: list[int]
    params: int
    macs: int
    activation_bytes: int
    aux: str = ""
    #: How the summary names first and last: their paths, except for unnamed layers (ReportData.labels).
    first_label: str = ""
    last_label: str = ""


#: Running sums over the nodes in id order of parameters, buffers, MACs and activation bytes
#: (_Views.sums): node i's own figure is sums[k][i + 1] - sums[k][i].
_Sums = tuple[list[int], list[int], list[int], list[int]]


def _is_tensor(node: Node) -> bool:
    """Whether node gives a learned tensor of its own (a layer of arity "none": param)."""
    kind = lookup(node.kind)
    return kind is not None and kind.arity == "none"


def _resolution(shape: tuple[int, ...], channel: int | None) -> str:
    """A stage's name: the spatial size of a map, wherever its channels are; the count of a sequence's
    tokens; "flat" for a vector (or a map whose channels were lost, read as C×H×W)."""
    if len(shape) == 3:
        h, w = (d for i, d in enumerate(shape) if i != (channel if channel is not None else 0))
        return f"{h}×{w}"
    if len(shape) == 2 and channel is not None:
        return f"{shape[1 - channel]} tokens"
    return "flat"


def _moves_data(node: Node) -> bool:
    """A layer that only moves or pads values and keeps the rank (permute, slice, pad, roll): it
    belongs to the stage it reads, not to one of its own (Swin's patch merging slices its map)."""
    kind = lookup(node.kind)
    return kind is not None and kind.category == "reshape" and len(node.in_shapes[0]) == len(node.out_shape)


def _stages(
    graph: Graph, sums: _Sums, channels: list[int | None], owner: dict[int, str], labels: dict[str, str]
) -> list[StageRow]:
    # Plain lists while summing, rows at the end:
    # [resolution, first, last, layers, shape, params, macs, activation_bytes, aux].
    rows: list[list[Any]] = []
    heads: dict[str, list[Any]] = {}
    cum_p, _, cum_m, cum_a = sums
    for node in graph.layers():
        nid = node.id
        shape = node.out_shape
        aux = owner.get(nid, "")
        act = cum_a[nid + 1] - cum_a[nid]
        params = cum_p[nid + 1] - cum_p[nid]
        macs = cum_m[nid + 1] - cum_m[nid]
        # An aux head would cut the main path's run at its resolution in two: it gets a row apart.
        if aux:
            r = heads.get(aux)
            if r is None:
                r = heads[aux] = [f"{aux} head", node.path, node.path, 0, shape, 0, 0, 0, aux]
        elif rows and _is_tensor(node):
            # A learned tensor (param) is a branch of the join that follows, at that join's resolution.
            r = rows[-1]
            shape = r[4]
        elif rows and _moves_data(node):
            r = rows[-1]
        else:
            res = _resolution(shape, channels[nid])
            if rows and rows[-1][0] == res:
                r = rows[-1]
            else:
                r = [res, node.path, node.path, 0, shape, 0, 0, 0, ""]
                rows.append(r)
        r[2], r[3], r[4] = node.path, r[3] + 1, shape
        r[5], r[6], r[7] = r[5] + params, r[6] + macs, r[7] + act
    return [
        StageRow(
            resolution=r[0], first=r[1], last=r[2], layers=r[3], output_shape=list(r[4]), params=r[5],
            macs=r[6], activation_bytes=r[7], aux=r[8], first_label=labels.get(r[1], r[1]),
            last_label=labels.get(r[2], r[2]),
        )
        for r in rows + list(heads.values())
    ]


class ReportData:
    """What `cnnspec check` knows about a network without running it, as plain Python data.

    The totals are attributes, set when it is built; each list of rows (layers,
    groups, folds, stages, aux outputs, the table, init rules) is built from the
    graph and the pass results when first read, and kept: a caller that wants
    only the totals does not pay for 500 rows. The attributes are the Report's
    fields and computed fields, by the same names.
    """

    def __init__(
        self,
        graph: Graph,
        analysis: Analysis,
        warnings: list[Diagnostic] | None = None,
        *,
        depth: int | None = -1,
        expand: bool = False,
        batch: int = 1,
    ) -> None:
        """depth: how many levels of groups the table opens; None opens all, -1 (the default)
        opens as many as fit in MAX_ROWS rows. expand: show every instance of a fold. batch:
        the batch size of the activation memory."""
        self.graph, self.analysis = graph, analysis
        self.requested_depth, self.expanded, self.batch = depth, expand, batch
        trainable, macs = analysis.trainable_params, analysis.total_macs
        self.network = graph.network
        self.params = {k: v for k, v in graph.params.items() if isinstance(v, (int, float, str, bool, list))}
        self.input_shape = list(graph.input_shape)
        self.output_shape = list(graph.output_shape)
        self.total_params = self.trainable_params = trainable
        self.buffers = analysis.buffers
        self.param_bytes_fp32, self.param_bytes_bf16 = 4 * trainable, 2 * trainable
        self.macs, self.flops = macs, 2 * macs
        mixes = any(n.kind in ("attention", "window_attention") for n in graph.nodes)
        self.mac_convention = MAC_CONVENTION + (ATTENTION_CONVENTION if mixes else "")
        self.activation_convention = ACTIVATION_CONVENTION
        self.activation_bytes = analysis.activation_bytes(batch)
        #: The checker's warnings, as --diagnostics json gives them.
        self.warnings: list[dict[str, object]] = [d.to_dict() for d in warnings or []]

    @property
    def aux_params(self) -> int:
        """The part of total_params that lies in aux heads (used in training only)."""
        return sum(r.params for r in self.aux_outputs)

    @property
    def aux_macs(self) -> int:
        """The part of macs that lies in aux heads."""
        return sum(r.macs for r in self.aux_outputs)

    @cached_property
    def groups(self) -> list[GroupRow]:
        """Block instances and named groups, with the totals of the layers inside."""
        return self.groups_and_folds[0]

    @cached_property
    def folds(self) -> list[FoldRow]:
        """Runs of identical (or channels-only different) block instances shown as one."""
        return self.groups_and_folds[1]

    @cached_property
    def owner(self) -> dict[int, str]:
        """The aux head each node lies in (cnnspec.analysis.aux)."""
        from cnnspec.analysis.aux import aux_heads

        return aux_heads(self.graph)

    def rf(self, nid: int) -> list[int]:
        r = self.analysis.receptive[nid]
        return list(r.rf) if r.defined else []

    @cached_property
    def sums(self) -> _Sums:
        """Running sums of parameters, buffers, MACs and activation bytes over the nodes in id order.

        An item's nodes are a run of consecutive ids, so its totals are a
        difference of two sums rather than a loop.
        """
        analysis, batch = self.analysis, self.batch
        cum_p, cum_b, cum_m, cum_a = [0], [0], [0], [0]
        p = b = m = a = 0
        for counts, macs, s in zip(analysis.params, analysis.macs, analysis.saved, strict=True):
            params, buffers = counts or (0, 0)
            p, b, m, a = p + params, b + buffers, m + (macs or 0), a + (s[0] * batch + s[1] if s else 0)
            cum_p.append(p)
            cum_b.append(b)
            cum_m.append(m)
            cum_a.append(a)
        return cum_p, cum_b, cum_m, cum_a

    def totals(self, item: Item) -> tuple[int, int, int, int]:
        """Parameters, buffers, MACs and activation bytes of the nodes of an item."""
        cum_p, cum_b, cum_m, cum_a = self.sums
        ids = item.node_ids
        first, last = ids[0], ids[-1]
        if last - first + 1 == len(ids):
            return (
                cum_p[last + 1] - cum_p[first],
                cum_b[last + 1] - cum_b[first],
                cum_m[last + 1] - cum_m[first],
                cum_a[last + 1] - cum_a[first],
            )
        return (  # not a run (no spec makes one so far): add them up
            sum(cum_p[i + 1] - cum_p[i] for i in ids),
            sum(cum_b[i + 1] - cum_b[i] for i in ids),
            sum(cum_m[i + 1] - cum_m[i] for i in ids),
            sum(cum_a[i + 1] - cum_a[i] for i in ids),
        )

    @cached_property
    def layers(self) -> list[LayerRow]:
        """One row per layer and join, in topological order."""
        graph, batch, owner = self.graph, self.batch, self.owner
        receptive = self.analysis.receptive
        cum_p, cum_b, cum_m, cum_a = self.sums
        nodes = graph.nodes
        rows: list[LayerRow] = []
        for node in graph.layers():
            nid, r, span = node.id, receptive[node.id], node.span
            macs = cum_m[nid + 1] - cum_m[nid]
            rows.append(LayerRow(
                path=node.path,
                op=node.kind,
                output_shape=list(node.out_shape),
                params=cum_p[nid + 1] - cum_p[nid],
                buffers=cum_b[nid + 1] - cum_b[nid],
                macs=macs,
                flops=2 * macs,
                receptive_field=list(r.rf) if r.defined else [],
                jump=list(r.jump) if r.defined else [],
                activation_bytes=cum_a[nid + 1] - cum_a[nid],
                output_bytes=4 * batch * math.prod(node.out_shape),
                scope=node.scope,
                inputs=[nodes[i].path for i in node.inputs],
                skip=list(node.skip),
                aux=owner.get(nid, ""),
                file=span.file,
                line=span.line,
                col=span.col,
            ))
        return rows

    @cached_property
    def labels(self) -> dict[str, str]:
        """How the summary names the unnamed layers, by path: "layer4.2 (relu 3)", "(flatten)".

        An unnamed layer's path ends in its position in its scope: "2" for
        ResNet's first relu, "layer4.2.8" for the last relu of layer4.2. Such
        a number reads as a name, and a meaningless one, where the layer
        holds no state (no state_dict key carries it) and its siblings have
        names, or where no module lives at the path at all (flatten, an
        unnamed join): those show their op in their scope instead, numbered
        in order where the scope has more than one of that op. A layer
        with parameters or buffers keeps its path, and so does one in a
        sequence whose members are all numbered (VGG's `features.1`, a
        `downsample.0`): there the number is how torch indexes it.
        """
        graph = self.graph
        params = self.analysis.params
        unnamed = [
            n for n in graph.layers()
            if n.path.rpartition(".")[2].isdigit() and (not n.has_module or not any(params[n.id] or ()))
        ]
        if not unnamed:
            return {}
        # The names directly under each scope (layers and groups alike), to tell a sequence.
        names: dict[str, set[str]] = {}
        for node in graph.layers():
            parts = node.path.split(".")
            for i in range(len(parts)):
                names.setdefault(".".join(parts[:i]), set()).add(parts[i])
        # The relabelled layers of each scope by kind, in order: a kind met twice in one scope
        # (a Bottleneck's three relus) is numbered, so that no two rows read the same.
        by_kind: dict[tuple[str, str], list[str]] = {}
        for n in unnamed:
            scope = n.path.rpartition(".")[0]
            if n.has_module and all(name.isdigit() for name in names.get(scope, ())):
                continue
            by_kind.setdefault((scope, n.kind), []).append(n.path)
        labels = {}
        for (scope, kind), paths in by_kind.items():
            for k, path in enumerate(paths, 1):
                what = f"{kind} {k}" if len(paths) > 1 else kind
                labels[path] = f"{scope} ({what})" if scope else f"({what})"
        return labels

    @cached_property
    def tree(self) -> list[Item]:
        return build_tree(self.graph)

    @cached_property
    def groups_and_folds(self) -> tuple[list[GroupRow], list[FoldRow]]:
        nodes = self.graph.nodes
        groups: list[GroupRow] = []
        folds: list[FoldRow] = []

        def collect(items: list[Item]) -> None:
            for item in items:
                if item.kind == "fold":
                    p, _, m, _ = self.totals(item)
                    folds.append(FoldRow(
                        path=item.path, block=item.name, count=item.count,
                        instances=[i.path for i in item.instances], params=p, macs=m,
                        output_shape=list(nodes[item.last].out_shape),
                        identical=item.identical, varies=list(item.varies),
                    ))
                    collect(item.instances)
                elif item.kind == "group":
                    assert item.group is not None
                    p, b, m, a = self.totals(item)
                    groups.append(GroupRow(
                        path=item.path, kind=item.group.kind, name=item.name,
                        layers=len(item.node_ids), params=p, buffers=b, macs=m,
                        output_shape=list(nodes[item.last].out_shape),
                        receptive_field=self.rf(item.last), activation_bytes=a,
                    ))
                    collect(item.children)

        collect(self.tree)
        return groups, folds

    @cached_property
    def depth(self) -> int | None:
        """How many levels of groups the table opens (None: all)."""
        if self.requested_depth != -1:
            return self.requested_depth
        return None if self.expanded else auto_depth(self.tree, self.expanded, MAX_ROWS)

    @cached_property
    def table(self) -> list[TableRow]:
        """The summary table's rows as shown at `depth`."""
        nodes, owner, labels = self.graph.nodes, self.owner, self.labels

        def head_of(item: Item) -> str:
            """The aux head every node of the item lies in, or "" (a main-path or mixed item)."""
            if not owner:
                return ""
            heads = {owner.get(i, "") for i in item.node_ids}
            return heads.pop() if len(heads) == 1 else ""

        table = []
        for shown in visible(self.tree, self.depth, self.expanded):
            item = shown.item
            p, _, m, a = self.totals(item)
            opened = shown.opened
            table.append(TableRow(
                level=shown.level, kind="open" if opened else item.kind, path=item.path, op=describe(item),
                count=item.count, output_shape=list(nodes[item.last].out_shape),
                params=0 if opened else p, macs=0 if opened else m,
                receptive_field=self.rf(item.last), activation_bytes=0 if opened else a,
                aux=head_of(item), label=labels.get(item.path, item.path),
                subtotal_params=p, subtotal_macs=m, subtotal_activation_bytes=a,
            ))
        return table

    @cached_property
    def init_rules(self) -> list[InitRow]:
        """The network's `init` rules in the order applied, with the layers each selects."""
        rules = self.graph.init_rules
        layers = self.graph.layers() if rules else []
        return [
            InitRow(
                kind=r.kind, pattern=r.pattern, target=r.target, scheme=r.scheme, args=dict(r.args),
                layers=sum(map(r.selects, layers)), file=r.span.file, line=r.span.line, col=r.span.col,
            )
            for r in rules
        ]

    @cached_property
    def aux_outputs(self) -> list[AuxRow]:
        """Auxiliary outputs in declaration order; their heads' parameters and MACs are in the totals."""
        params, macs = self.analysis.params, self.analysis.macs
        rows = []
        for out in self.graph.aux:
            ids = [i for i, name in self.owner.items() if name == out.name]
            node = self.graph.nodes[out.node]
            rows.append(AuxRow(
                name=out.name, node=node.path, node_label=self.labels.get(node.path, node.path),
                output_shape=list(node.out_shape), weight=float(out.weight),
                layers=len(ids), params=sum((params[i] or (0, 0))[0] for i in ids),
                macs=sum(macs[i] or 0 for i in ids), file=out.span.file, line=out.span.line, col=out.span.col,
            ))
        return rows

    @cached_property
    def stages(self) -> list[StageRow]:
        """Runs of consecutive layers at one spatial resolution."""
        return _stages(self.graph, self.sums, self.analysis.channels, self.owner, self.labels)
