"""The report of a checked network: the data behind `check`'s table and `--json`."""

from __future__ import annotations

import math
from typing import Any, TypeVar

from pydantic import BaseModel

from cnnspec.diagnostics import Diagnostic
from cnnspec.ir import Graph, construct_unchecked
from cnnspec.passes import Analysis

#: Stated once in every summary and report: what one MAC and one FLOP are.
MAC_CONVENTION = (
    "1 MAC = one multiply-add of a convolution or linear layer, per sample; FLOPs = 2 × MACs; "
    "bias, normalisation, activation, pooling and joins are not counted"
)
#: What the activation memory counts (docs/analysis.md).
ACTIVATION_CONVENTION = (
    "fp32 tensors autograd saves for backward in one training step, input included, each storage once"
)
#: Tables taller than this open fewer levels of groups unless --depth or --expand says otherwise.
MAX_ROWS = 60


class LayerRow(BaseModel):
    """One layer or join of the network."""

    path: str
    op: str
    output_shape: list[int]
    params: int
    buffers: int
    macs: int
    flops: int
    #: Receptive field (height, width) in input pixels and the jump (effective stride).
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


class GroupRow(BaseModel):
    """A block instance or named group, with the totals of the layers inside."""

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


class FoldRow(BaseModel):
    """A run of consecutive block instances shown as one ("Bottleneck ×35").

    identical: the instances match layer for layer; False for a fold whose
    instances differ in channel counts only ("DenseLayer ×6 (channels vary)").
    """

    path: str
    block: str
    count: int
    instances: list[str]
    params: int
    macs: int
    output_shape: list[int]
    identical: bool = True


class TableRow(BaseModel):
    """One row of the summary table as shown at the report's depth."""

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


class AuxRow(BaseModel):
    """An auxiliary output: returned in training mode only, weighted in the loss."""

    name: str
    #: The module path of the layer whose output it is.
    node: str
    output_shape: list[int]
    weight: float
    #: Totals over the layers of its head (the layers only it depends on).
    layers: int
    params: int
    macs: int
    file: str
    line: int
    col: int


class StageRow(BaseModel):
    """A run of consecutive layers at one spatial resolution (the head: flat features).

    The layers of an aux head are left out of the main path's runs and make
    one row of their own, whose resolution is "aux1 head" and `aux` its name.
    """

    resolution: str
    first: str
    last: str
    layers: int
    output_shape: list[int]
    params: int
    macs: int
    activation_bytes: int
    aux: str = ""


class Report(BaseModel):
    """What `cnnspec check` knows about a network without running it."""

    network: str
    params: dict[str, object]
    input_shape: list[int]
    output_shape: list[int]
    total_params: int
    trainable_params: int
    buffers: int
    param_bytes_fp32: int
    param_bytes_bf16: int
    macs: int
    flops: int
    mac_convention: str = MAC_CONVENTION
    batch: int = 1
    activation_bytes: int = 0
    activation_convention: str = ACTIVATION_CONVENTION
    layers: list[LayerRow]
    groups: list[GroupRow] = []
    folds: list[FoldRow] = []
    stages: list[StageRow] = []
    #: Auxiliary outputs in declaration order; their heads' parameters and MACs are in the totals.
    aux_outputs: list[AuxRow] = []
    #: The parts of total_params and macs that lie in aux heads (used in training only).
    aux_params: int = 0
    aux_macs: int = 0
    #: The table as shown: groups opened `depth` levels (None: all), folds opened when `expanded`.
    depth: int | None = None
    expanded: bool = False
    table: list[TableRow] = []
    warnings: list[dict[str, object]] = []

    @property
    def summary(self) -> str:
        """The human-readable table."""
        from cnnspec.summary import format_report

        return format_report(self)


def _row(cls: type[_M], **fields: Any) -> _M:
    """A row from values the passes already computed with the row's types, without validation.

    Like Node.unchecked: pydantic's validation cost as much as the rest of the
    report for ResNet-152's 500 layers. Fields left out take their defaults.
    """
    for name, default in _DEFAULTS[cls]:
        if name not in fields:
            fields[name] = default
    return construct_unchecked(cls, fields)


_M = TypeVar("_M", bound=BaseModel)
#: Per row model: the (name, default) of each field with a plain (immutable) default.
_DEFAULTS: dict[type[BaseModel], list[tuple[str, Any]]] = {
    cls: [(name, f.default) for name, f in cls.model_fields.items() if not f.is_required()]
    for cls in (LayerRow, GroupRow, FoldRow, TableRow, AuxRow, StageRow)
}


def _stages(graph: Graph, analysis: Analysis, batch: int, owner: dict[int, str]) -> list[StageRow]:
    # Plain lists while summing (a pydantic model's __setattr__ is slow), rows at the end:
    # [resolution, first, last, layers, shape, params, macs, activation_bytes, aux].
    rows: list[list[Any]] = []
    heads: dict[str, list[Any]] = {}
    saved_of, params_of, macs_of = analysis.saved.get, analysis.params.get, analysis.macs.get
    for node in graph.layers():
        nid = node.id
        shape = node.out_shape
        aux = owner.get(nid, "")
        saved = saved_of(nid)
        act = saved.at(batch) if saved else 0
        params = params_of(nid, (0, 0))[0]
        macs = macs_of(nid, 0)
        # An aux head would cut the main path's run at its resolution in two: it gets a row apart.
        if aux:
            r = heads.get(aux)
            if r is None:
                r = heads[aux] = [f"{aux} head", node.path, node.path, 0, shape, 0, 0, 0, aux]
        else:
            res = f"{shape[1]}×{shape[2]}" if len(shape) == 3 else "flat"
            if rows and rows[-1][0] == res:
                r = rows[-1]
            else:
                r = [res, node.path, node.path, 0, shape, 0, 0, 0, ""]
                rows.append(r)
        r[2], r[3], r[4] = node.path, r[3] + 1, shape
        r[5], r[6], r[7] = r[5] + params, r[6] + macs, r[7] + act
    return [
        _row(StageRow, resolution=r[0], first=r[1], last=r[2], layers=r[3], output_shape=list(r[4]), params=r[5],
             macs=r[6], activation_bytes=r[7], aux=r[8])
        for r in rows + list(heads.values())
    ]


def build_report(
    graph: Graph,
    analysis: Analysis,
    warnings: list[Diagnostic] | None = None,
    *,
    depth: int | None = -1,
    expand: bool = False,
    batch: int = 1,
) -> Report:
    """Assemble the report from the graph and the pass results.

    depth: how many levels of groups the table opens; None opens all, -1
    (the default) opens as many as fit in MAX_ROWS rows. expand: show every
    instance of a fold. batch: the batch size of the activation memory.
    """
    from cnnspec.passes.aux import aux_heads
    from cnnspec.passes.fold import Item, auto_depth, build_tree, describe, visible

    owner = aux_heads(graph)
    saved_of, params_of, macs_of, receptive_of = (
        analysis.saved.get, analysis.params.get, analysis.macs.get, analysis.receptive.get
    )

    def rf(nid: int) -> list[int]:
        r = receptive_of(nid)
        return list(r.rf) if r else [1, 1]

    # Running sums over the nodes in id (topological) order: an item's nodes are a run of
    # consecutive ids, so its totals are a difference of two sums rather than a loop.
    nodes = graph.nodes
    cum_p, cum_b, cum_m, cum_a = [0], [0], [0], [0]
    p = b = m = a = 0
    rows = []
    for node in nodes:
        nid = node.id
        params, buffers = params_of(nid, (0, 0))
        macs = macs_of(nid, 0)
        s = saved_of(nid)
        act = s.at(batch) if s else 0
        p, b, m, a = p + params, b + buffers, m + macs, a + act
        cum_p.append(p)
        cum_b.append(b)
        cum_m.append(m)
        cum_a.append(a)
        if nid == 0:
            continue  # the input: not a layer
        r = receptive_of(nid)
        span = node.span
        rows.append(
            _row(
                LayerRow,
                path=node.path,
                op=node.kind,
                output_shape=list(node.out_shape),
                params=params,
                buffers=buffers,
                macs=macs,
                flops=2 * macs,
                receptive_field=list(r.rf) if r else [1, 1],
                jump=list(r.jump) if r else [1, 1],
                activation_bytes=act,
                output_bytes=4 * batch * math.prod(node.out_shape),
                scope=node.scope,
                inputs=[nodes[i].path for i in node.inputs],
                skip=list(node.skip),
                aux=owner.get(nid, ""),
                file=span.file,
                line=span.line,
                col=span.col,
            )
        )

    def totals(item: Item) -> tuple[int, int, int, int]:
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

    tree = build_tree(graph)
    groups: list[GroupRow] = []
    folds: list[FoldRow] = []

    def collect(items: list[Item]) -> None:
        for item in items:
            if item.kind == "fold":
                p, _, m, _ = totals(item)
                folds.append(_row(FoldRow, path=item.path, block=item.name, count=item.count,
                                  instances=[i.path for i in item.instances], params=p, macs=m,
                                  output_shape=list(nodes[item.last].out_shape),
                                  identical=item.identical))
                collect(item.instances)
            elif item.kind == "group":
                assert item.group is not None
                p, b, m, a = totals(item)
                groups.append(_row(GroupRow, path=item.path, kind=item.group.kind, name=item.name,
                                   layers=len(item.node_ids), params=p, buffers=b, macs=m,
                                   output_shape=list(nodes[item.last].out_shape),
                                   receptive_field=rf(item.last), activation_bytes=a))
                collect(item.children)

    collect(tree)

    if depth == -1:
        depth = None if expand else auto_depth(tree, expand, MAX_ROWS)
    def head_of(item: Item) -> str:
        """The aux head every node of the item lies in, or "" (a main-path or mixed item)."""
        if not owner:
            return ""
        heads = {owner.get(i, "") for i in item.node_ids}
        return heads.pop() if len(heads) == 1 else ""

    table = []
    for shown in visible(tree, depth, expand):
        item = shown.item
        p, _, m, a = totals(item)
        opened = shown.opened
        table.append(_row(
            TableRow,
            level=shown.level, kind="open" if opened else item.kind, path=item.path, op=describe(item),
            count=item.count, output_shape=list(nodes[item.last].out_shape),
            params=0 if opened else p, macs=0 if opened else m,
            receptive_field=rf(item.last), activation_bytes=0 if opened else a,
            aux=head_of(item),
        ))

    aux_rows = []
    for out in graph.aux:
        ids = [i for i, name in owner.items() if name == out.name]
        node = nodes[out.node]
        aux_rows.append(_row(
            AuxRow,
            name=out.name, node=node.path, output_shape=list(node.out_shape), weight=out.weight, layers=len(ids),
            params=sum(params_of(i, (0, 0))[0] for i in ids), macs=sum(macs_of(i, 0) for i in ids),
            file=out.span.file, line=out.span.line, col=out.span.col,
        ))

    trainable = analysis.trainable_params
    macs = analysis.total_macs
    return Report(
        network=graph.network,
        params={k: v for k, v in graph.params.items() if isinstance(v, (int, float, str, bool, list))},
        input_shape=list(graph.input_shape),
        output_shape=list(graph.output_shape),
        total_params=trainable,
        trainable_params=trainable,
        buffers=analysis.buffers,
        param_bytes_fp32=4 * trainable,
        param_bytes_bf16=2 * trainable,
        macs=macs,
        flops=2 * macs,
        batch=batch,
        activation_bytes=analysis.activation_bytes(batch),
        layers=rows,
        groups=groups,
        folds=folds,
        stages=_stages(graph, analysis, batch, owner),
        aux_outputs=aux_rows,
        aux_params=sum(r.params for r in aux_rows),
        aux_macs=sum(r.macs for r in aux_rows),
        depth=depth,
        expanded=expand,
        table=table,
        warnings=[d.to_dict() for d in warnings or []],
    )

