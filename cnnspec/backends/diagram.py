"""Graphviz diagrams of a network: what drawing.py draws, laid out as DOT with the graphviz package; `dot` renders it.

What is drawn comes from the IR and the analysis, never recomputed: each
node shows its op with its key arguments and its output shape (parameters
and MACs with `params=True`); edges carry the shape that flows along them;
block instances and named groups are clusters; residual shortcuts (the IR's
`Node.skip`) are dashed red edges that do not pull on the layout.

Two things keep big networks readable. A run of identical consecutive
block instances (cnnspec.views.fold) is drawn once: its first instance, with
its wiring and its shortcut, in a frame titled "Bottleneck ×35 / layer3.1-35
(each like layer3.1)"; a run that differs only in channel counts is titled
"×6 (channels vary)" with the channels from first to last. And a
normalisation or activation that directly follows its only producer is
drawn inside the producer's node ("conv 3×3, 64 · batchnorm · relu").
`expand=True` turns both off and draws every layer; `depth=N` draws groups
deeper than N levels as single nodes. `compact=True` lays the same drawing
out for a page (smaller type, columns side by side).

A frame's title is a plain node at its top, and edge labels are laid out
with the nodes (`label`, not `xlabel`): dot keeps both clear of nodes,
which it does not do for cluster labels. The branches of a join (an
Inception module's four) sit left to right in spec order. An auxiliary
head (`aux(weight = 0.3) { ... }`) is a dashed orange cluster ending in an
output node of its own, "aux1 output 1000"; the main output then gets one
too, so that the sinks say which is which.
"""

from __future__ import annotations

import html
import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path

import graphviz

from cnnspec.analysis import Analysis
from cnnspec.analysis.pipeline import PipelinePlan
from cnnspec.backends.drawing import AUX_COLOUR, OUTPUT_FILL, SKIP_COLOUR, STAGE_COLOURS, Cluster, Drawing, Unit
from cnnspec.ir import Graph
from cnnspec.views.fold import Item, build_tree, fold_path
from cnnspec.views.format import human, nbytes, shape_text

#: Output suffixes and the `dot -T` format that writes them (None: the DOT text itself).
FORMATS: dict[str, str | None] = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None}


class GraphvizMissing(RuntimeError):
    """The `dot` program is not on PATH."""


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


@dataclass
class Diagram:
    """The DOT text of a network and what it holds (for tests and reports)."""

    dot: str
    nodes: int
    clusters: int
    edges: int
    skip_edges: int
    #: Output nodes drawn for auxiliary outputs (the main output's node is not counted here).
    aux_outputs: int = 0
    #: Pipeline stages drawn (0 without a plan).
    stages: int = 0


@dataclass(frozen=True)
class _Look:
    """Type sizes and spacing: the default, or the compact one for a page of a paper."""

    font: int = 11
    small: int = 9
    edge_font: int = 8
    #: Whether edges carry their shape (compact: each node already ends in its output shape).
    edge_labels: bool = True
    nodesep: float = 0.25
    ranksep: float = 0.12
    margin: str = "0.12,0.04"


#: The notes an edge from one column to the next ends and starts again at.
_STUB = {"shape": "plaintext", "fontsize": "7", "fontcolor": "#555555", "height": "0.15", "margin": "0.02,0"}

_COMPACT = _Look(font=9, small=7, edge_font=7, edge_labels=False, nodesep=0.15, ranksep=0.16, margin="0.06,0.02")


def _unit_node(g: graphviz.Digraph, u: Unit, look: _Look) -> None:
    first, *rest = u.lines
    small = look.small
    label = f"<b>{_esc(first)}</b>" + "".join(f'<br/><font point-size="{small}">{_esc(x)}</font>' for x in rest)
    extra = {"peripheries": str(u.peripheries)} if u.peripheries != 1 else {}
    if u.colour:
        extra.update(color=u.colour, penwidth="2.5")
    g.node(u.dot_id, label=f"<{label}>", shape=u.shape, style=u.style, fillcolor=u.fill, **extra)


def _members(c: Cluster) -> set[str]:
    """The dot ids of the units inside a cluster, at any depth."""
    return {u for it in c.items for u in ({it.dot_id} if isinstance(it, Unit) else _members(it))}


def _title_node(g: graphviz.Digraph, c: Cluster, look: _Look) -> str:
    """The cluster's title as a plain node of its own; returns its id.

    A node, not the cluster's label: dot places edge labels clear of nodes but
    not of cluster labels, and routes edges around nodes but through labels.
    """
    name = _title_id(c)
    sub = "".join(f'<br align="left"/><font point-size="{look.small}">{_esc(x)}</font>' for x in c.sub)
    label = f'<<b>{_esc(c.label)}</b>{sub}<br align="left"/>>'
    g.node(name, label=label, shape="plaintext", margin="0.04,0", height="0.2")
    return name


def _emit(items: list[Unit | Cluster], g: graphviz.Digraph, preds: dict[str, set[str]], look: _Look) -> int:
    """Add the items to g; returns how many clusters they hold.

    preds: the units each unit is drawn below (the edges that pull on the layout).
    """
    clusters = 0
    for it in items:
        if isinstance(it, Unit):
            _unit_node(g, it, look)
            continue
        with g.subgraph(name=it.dot_id) as c:
            fill = {"fillcolor": it.fill} if it.fill else {}
            c.attr(label="", style=it.style, color=it.colour, **fill)
            title = _title_node(c, it, look)
            clusters += 1 + _emit(it.items, c, preds, look)
            # The title sits below what the cluster's nodes are drawn below outside it, and above its
            # nested clusters' titles and the units that enter it. Not in a frame with a row of
            # branches nor an aux head's: there, invisible edges from the title let dot's crossing
            # heuristic reorder the rows of branches; the edges into the frame have labels (to_dot
            # gives them blank ones where they carry no shape), and the title takes their rank.
            inside = _members(it)
            above: set[str] = set()
            plain = not it.row and it.colour != AUX_COLOUR
            for x in it.items:
                if isinstance(x, Cluster):
                    c.edge(title, _title_id(x), style="invis")
                elif plain and preds.get(x.dot_id, set()) - inside:
                    c.edge(title, x.dot_id, style="invis")
            for u in inside:
                above |= preds.get(u, set()) - inside
            for u in sorted(above, key=lambda u: (len(u), u)):
                g.edge(u, title, style="invis")
            if it.row:
                # One rank, and invisible edges between neighbours, which dot draws left to right:
                # the branches keep the spec's order whatever the crossing heuristic prefers.
                with c.subgraph() as rank:
                    rank.attr(rank="same")
                    for u in it.row:
                        rank.node(u)
                for a, z in itertools.pairwise(it.row):
                    c.edge(a, z, style="invis")
    return clusters


def _flatten(items: list[Unit | Cluster]) -> list[Unit | Cluster]:
    """The items in drawing order, each cluster followed by its own items' (so that the spine's items appear)."""
    out: list[Unit | Cluster] = []
    for it in items:
        out.append(it)
        if isinstance(it, Cluster):
            out += _flatten(it.items)
    return out


def _titles(c: Cluster) -> list[str]:
    """The title nodes of a cluster and the clusters inside it."""
    return [_title_id(c)] + [t for x in c.items if isinstance(x, Cluster) for t in _titles(x)]


def _title_id(c: Cluster) -> str:
    return "t" + c.dot_id.removeprefix("cluster_")


def _extent(it: Unit | Cluster) -> tuple[float, float]:
    """About how many ranks tall and nodes wide an item is drawn (for choosing columns)."""
    if isinstance(it, Unit):
        return 1.0, 1.0
    sizes = [_extent(x) for x in it.items]
    # A long title widens the frame: about 0.06 inches a character, in nodes of 2.3 inches.
    title = max(len(x) for x in [it.label, *it.sub]) * 0.06 / 2.3
    if it.row:  # the branches of a join side by side: as tall as the longest, about
        return 2.0 + (len(sizes) - 1) / len(it.row), max(float(len(it.row)), title)
    return 1.0 + sum(h for h, _ in sizes), max(max((w for _, w in sizes), default=1.0), title)


def _unframe(top: list[Unit | Cluster]) -> list[Unit | Cluster]:
    """The top level with the frame of a group that holds most of the network (DenseNet's `features`)
    taken off, its items in its place: columns are made of top-level items, and a frame cannot be
    broken into columns (dot orders the nodes of a rank, not clusters)."""
    while True:
        total = sum(_extent(x)[0] for x in top)
        big = [i for i, x in enumerate(top) if isinstance(x, Cluster) and not x.fill and _extent(x)[0] > 0.6 * total]
        if not big:
            return top
        i = big[0]
        top = [*top[:i], *top[i].items, *top[i + 1 :]]  # type: ignore[union-attr]


def _columns(items: list[Unit | Cluster]) -> list[list[Unit | Cluster]]:
    """The items in consecutive columns whose drawing is about as tall as a page is for its width.

    Each count of columns splits the items where the running height passes its share; the one
    that lets the drawing fit a page (6.5 by 9 inches, upright or turned) at the largest scale wins.
    """
    sizes = [_extent(x) for x in items]
    total = sum(h for h, _ in sizes)
    best: tuple[float, list[list[Unit | Cluster]]] | None = None
    for k in range(1, min(6, len(items)) + 1):
        cols: list[list[Unit | Cluster]] = [[]]
        heights, widths, done = [0.0], [0.0], 0.0
        for it, (h, w) in zip(items, sizes, strict=True):
            # Not at a join's branches: below the note a column starts with, dot does not keep them in order.
            breaks = not (isinstance(it, Cluster) and it.row)
            if cols[-1] and breaks and len(cols) < k and done > total * len(cols) / k * 0.8:
                cols.append([])
                heights.append(0.0)
                widths.append(0.0)
            cols[-1].append(it)
            heights[-1] += h
            widths[-1] = max(widths[-1], w)
            done += h
        # In the compact look a rank is about half an inch, a node with its spacing 2.3 inches wide: the
        # scale at which the drawing fits a page of 6.5 by 9 inches, upright or turned, the larger the better.
        w, h = sum(widths) * 2.3, max(heights) * 0.5
        scale = max(min(6.5 / w, 9 / h), min(9 / w, 6.5 / h))
        if best is None or scale > best[0] + 1e-9:
            best = (scale, cols)
    assert best is not None
    return best[1]


def _first_drawn(it: Unit | Cluster) -> str:
    """The node at the top of an item: a unit, or a cluster's title."""
    return it.dot_id if isinstance(it, Unit) else _title_id(it)


def to_dot(
    graph: Graph,
    analysis: Analysis,
    *,
    depth: int | None = None,
    expand: bool = False,
    rankdir: str = "TB",
    params: bool = False,
    compact: bool = False,
    plan: PipelinePlan | None = None,
) -> Diagram:
    """The DOT text of a network: folded and fused by default, every layer when expand.

    compact: a figure for a page of a paper: smaller type and spacing, no
    shapes on the edges (each node ends in its output shape) nor paths in
    the layers' nodes, and the network broken into columns side by side,
    left to right, each a run of the top-level groups (ResNet's stages).

    plan: a pipeline plan (cnnspec.analysis.pipeline) to draw: each stage's
    nodes bordered in its colour, a fold or fused chain never drawn across a
    boundary, each boundary edge bold in the colour of the stage it enters
    and labelled with what it sends, and a legend with every stage's totals.
    """
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be TB, LR, BT or RL, not {rankdir!r}")
    look = _COMPACT if compact else _Look()
    b = Drawing(graph, analysis, depth, expand, params, compact, plan)
    inp = graph.input
    top: list[Unit | Cluster] = [
        b.unit([inp.id], [f"input {shape_text(inp.out_shape)}"], fill="#ffffff", shape="box", style="rounded")
    ]
    tree = build_tree(graph)
    top += b.items(_split_folds(tree, b.stage_of) if plan else tree, 0)
    if graph.aux:
        top.append(
            b.unit(
                [],
                [f"output {shape_text(graph.output_shape)}", "main output"],
                fill=OUTPUT_FILL,
                shape="box",
                style="rounded,filled,bold",
            )
        )

    g = graphviz.Digraph(
        graph.network,
        graph_attr={
            "rankdir": rankdir, "fontname": "Helvetica", "fontsize": str(look.font), "nodesep": str(look.nodesep),
            "ranksep": str(look.ranksep),
            "label": f"<<b>{_esc(graph.network)}</b>: {_esc(shape_text(graph.input_shape))} → "
                     f"{_esc(shape_text(graph.output_shape))}>",
            "labelloc": "t",
        },
        node_attr={"fontname": "Helvetica", "fontsize": str(look.font), "margin": look.margin, "height": "0.3"},
        edge_attr={"fontname": "Helvetica", "fontsize": str(look.edge_font), "color": "#555555",
                   "fontcolor": "#555555", "arrowsize": "0.6"},
    )  # fmt: skip
    # One edge per pair of drawn nodes; shapes come from the producing node's out_shape. A pair
    # is a skip edge only when every edge it stands for is one: into a fold, the main path wins.
    seen: dict[tuple[str, str], bool] = {}
    labels: dict[tuple[str, str], str] = {}
    source: dict[tuple[str, str], int] = {}
    for node in graph.nodes:
        folds = b.instance_of.get(node.id, {})
        for pos, src in enumerate(node.inputs):
            a, z = b.unit_of[src], b.unit_of[node.id]
            if a == z:
                continue
            theirs = b.instance_of.get(src, {})
            if any(theirs.get(f, k) != k for f, k in folds.items()):
                continue  # from one instance of a fold to the next: drawn as the one instance
            skip = pos in node.skip
            key = (a, z)
            seen[key] = seen.get(key, True) and skip
            # The first edge a pair stands for names the shape: inside a fold, the instance drawn.
            labels.setdefault(key, shape_text(graph.nodes[src].out_shape))
            source.setdefault(key, src)
    aux_units = {b.unit_of[i] for i in b.owner}
    if graph.aux:
        # Edges to the output nodes: from the unit of each output's last node.
        for aux in graph.aux:
            key = (b.unit_of[aux.node], b.aux_out[aux.name])
            seen[key], labels[key] = False, shape_text(graph.nodes[aux.node].out_shape)
            aux_units.add(key[1])
        key = (b.unit_of[graph.output], top[-1].dot_id)  # type: ignore[union-attr]
        seen[key], labels[key] = False, shape_text(graph.output_shape)
    # Compact, in columns: the column of every drawn node (the nodes before the first column's in
    # the first, after the last's in the last); an edge from one column to the next does not pull.
    col: dict[str, int] = {}
    if compact and rankdir == "TB":
        top = _unframe(top)
        cols = _columns(top)
        where = {id(it): k for k, column in enumerate(cols) for it in column}
        current = 0
        for it in _flatten(top):
            current = where.get(id(it), current)
            for u in [it.dot_id] if isinstance(it, Unit) else [*_members(it), *_titles(it)]:
                col[u] = current
        if len(cols) > 1:
            # An invisible anchor above each column, outside every cluster, in one row left to right:
            # dot orders plain nodes of a rank by the edges between them, but not clusters.
            g.attr(newrank="true")
            anchors = [f"col{k}" for k in range(len(cols))]
            with g.subgraph() as rank:
                rank.attr(rank="same")
                for a in anchors:
                    rank.node(a, label="", shape="point", width="0", height="0", style="invis")
            for a, z in itertools.pairwise(anchors):
                g.edge(a, z, style="invis")
            g.edge(anchors[0], _first_drawn(cols[0][0]), style="invis")
    # An edge from one column to the next would climb across the figure: it ends in a note below
    # its source ("continued in column 2") and starts again from one at the top of the next column
    # ("from layer1.2.relu, 256×56×56"), both plain nodes of their columns.
    edges: dict[tuple[str, str], bool] = {}
    stubs: set[str] = set()
    for (a, z), skip in seen.items():
        if col.get(a, 0) == col.get(z, 0):
            edges[(a, z)] = skip
            continue
        out, into = f"o{a}", f"i{a}c{col[z]}"
        if out not in stubs:
            stubs.add(out)
            g.node(out, label=f"continued in column {col[z] + 1} ↓", **_STUB)
        if into not in stubs:
            stubs.add(into)
            src = graph.nodes[source[(a, z)]]
            # layer1.2, not the bare position of its unnamed relu, layer1.2.8
            name = src.scope if src.scope and src.path.rsplit(".", 1)[-1].isdigit() else src.path
            # ordering=out: its edges leave in the order given, the branches' (an Inception module's).
            g.node(into, label=f"from {name}, {labels[(a, z)]} ↓", ordering="out", **_STUB)
            col[into] = col[z]
            g.edge(f"col{col[z]}", into, style="invis")
        edges[(a, out)] = edges[(into, z)] = False
        labels[(a, out)] = labels[(into, z)] = ""
    preds: dict[str, set[str]] = {}
    for (a, z), skip in edges.items():
        if not skip:
            preds.setdefault(z, set()).add(a)
    n_clusters = _emit(top, g, preds, look)
    # Without shapes on the edges, the edges into a cluster get a blank label: a label takes a rank
    # of its own, where the cluster's title goes (_emit), and dot keeps a row of branches in order
    # below it.
    heads = {
        u
        for it in _flatten(top)
        if isinstance(it, Cluster)
        for inside in [_members(it)]
        for u in inside
        if preds.get(u, set()) - inside
    }
    n_skip = 0
    entering = _boundary_edges(graph, b, plan, source) if plan else {}
    if plan:
        g.node("pipeline_legend", label=_legend(plan, look), shape="plaintext", margin="0")
    for (a, z), skip in edges.items():
        label = {"label": labels[(a, z)]} if look.edge_labels and labels[(a, z)] else {}
        if not label and z in heads:
            label = {"label": " "}
        if (a, z) in entering:
            stage, text = entering[(a, z)]
            colour = STAGE_COLOURS[stage % len(STAGE_COLOURS)]
            g.edge(a, z, label=text, color=colour, fontcolor=colour, penwidth="3", style="bold")
        elif z in aux_units:
            g.edge(a, z, color=AUX_COLOUR, fontcolor=AUX_COLOUR, **label)
        elif skip:
            n_skip += 1
            g.edge(a, z, style="dashed", color=SKIP_COLOUR, fontcolor=SKIP_COLOUR, penwidth="1.4",
                   constraint="false", **label)  # fmt: skip
        else:
            g.edge(a, z, **label)
    return Diagram(g.source, b.n_units, n_clusters, len(seen), n_skip, len(b.aux_out), len(plan.stages) if plan else 0)


def _split_folds(items: list[Item], stage_of: dict[int, int]) -> list[Item]:
    """The tree with every fold that a pipeline boundary passes through broken at it: a run of
    instances in one stage stays a fold, an instance with a boundary inside is drawn open."""
    out: list[Item] = []
    for item in items:
        if item.kind == "group":
            item.children = _split_folds(item.children, stage_of)
            out.append(item)
            continue
        if item.kind != "fold" or len({stage_of[i] for i in item.node_ids}) == 1:
            out.append(item)
            continue
        runs: list[list[Item]] = []
        for inst in item.instances:
            stages = {stage_of[i] for i in inst.node_ids}
            key = stages.pop() if len(stages) == 1 else None
            if runs and key is not None and {stage_of[i] for i in runs[-1][0].node_ids} == {key}:
                runs[-1].append(inst)
            else:
                runs.append([inst])
        for run in runs:
            if len(run) == 1:
                out += _split_folds([run[0]], stage_of)
            else:
                path = fold_path(run[0].path, run[-1].path)
                out.append(Item("fold", path, instances=run, varies=item.varies))
    return out


def _boundary_edges(
    graph: Graph, b: Drawing, plan: PipelinePlan, source: dict[tuple[str, str], int]
) -> dict[tuple[str, str], tuple[int, str]]:
    """The drawn edges that cross from one pipeline stage into the next: (stage entered, label)."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for key, src in source.items():
        z = key[1]
        dst = next((i for i in graph.users(src) if b.unit_of.get(i) == z), None)
        if dst is None or b.stage_of.get(src) == b.stage_of.get(dst):
            continue
        stage = b.stage_of[dst]
        sent = plan.stages[stage - 1]
        shape = shape_text(graph.nodes[src].out_shape)
        out[key] = (stage, f"stage {stage - 1} → {stage}: {shape}, {nbytes(sent.boundary_bytes)}/sample")
    return out


def _legend(plan: PipelinePlan, look: _Look) -> str:
    """An HTML-like label: one row per stage, in its colour, with its layers and totals."""
    from cnnspec.views.pipeline import MEASURE_NAMES

    head = (
        f"<b>pipeline: {len(plan.stages)} stages, balanced on {_esc(MEASURE_NAMES[plan.balance])}</b>"
        f'<br/><font point-size="{look.small}">activation memory at batch {plan.batch}</font>'
    )
    rows = [f'<tr><td colspan="2" align="left">{head}</td></tr>']
    for s in plan.stages:
        colour = STAGE_COLOURS[s.index % len(STAGE_COLOURS)]
        totals = f"{s.layers} layers · {s.params:,} params · {human(s.macs)} MACs · {nbytes(s.memory)} act. mem"
        rows.append(
            f'<tr><td bgcolor="{colour}" width="14"> </td><td align="left"><b>stage {s.index}</b>: '
            f"{_esc(s.first)} … {_esc(s.last)}"
            f'<br/><font point-size="{look.small}">{_esc(totals)}</font></td></tr>'
        )
    return f'<<table border="0" cellborder="0" cellspacing="3">{"".join(rows)}</table>>'


def find_dot() -> str:
    """The path of Graphviz's `dot`; GraphvizMissing says how to install it."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(
            "Graphviz's `dot` program is not installed: install Graphviz (apt-get install graphviz, "
            "brew install graphviz or conda install graphviz), or write a .dot file, which needs no Graphviz"
        )
    return exe


#: The resolution of a PNG unless asked for another (`--dpi`); SVG and PDF are vector formats.
DEFAULT_DPI = 110


def render(dot_text: str, path: Path, fmt: str | None, dpi: int | None = None) -> None:
    """Write DOT text to path, rendered by Graphviz's `dot -T<fmt>` unless fmt is None (the DOT text itself).

    dpi: the resolution of a PNG (DEFAULT_DPI when None); other formats take none.
    """
    if fmt is None:
        path.write_text(dot_text, encoding="utf-8")
        return
    find_dot()
    if fmt == "png":
        # `dot -Gdpi=N`: the root graph's default dpi, given on the line after `digraph name {`.
        header, _, body = dot_text.partition("\n")
        dot_text = f"{header}\n\tgraph [dpi={dpi or DEFAULT_DPI}]\n{body}"
    try:
        data = graphviz.pipe("dot", fmt, dot_text.encode("utf-8"), quiet=True)
    except graphviz.CalledProcessError as e:
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else str(e.stderr or "")
        raise RuntimeError(f"dot failed ({e.returncode}): {stderr.strip()}") from None
    path.write_bytes(data)
