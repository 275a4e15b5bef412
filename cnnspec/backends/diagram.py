"""Graphviz diagrams of a network: IR and pass results in, DOT text out, `dot` renders it.

What is drawn comes from the IR and the analysis, never recomputed: each
node shows its op with its key arguments and its output shape (parameters
and MACs with `params=True`); edges carry the shape that flows along them;
block instances and named groups are clusters; residual shortcuts (the IR's
`Node.skip`) are dashed red edges that do not pull on the layout.

Two things keep big networks readable. Identical consecutive block
instances fold into one node marked "×35" (cnnspec.passes.fold), and a
normalisation or activation that directly follows its only producer is
drawn inside the producer's node ("conv 3×3, 64 · batchnorm · relu").
`expand=True` turns both off and draws every layer; `depth=N` draws groups
deeper than N levels as single nodes.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cnnspec.ir import Graph, Node
from cnnspec.passes import Analysis
from cnnspec.passes.fold import Item, build_tree, describe

#: Output suffixes and the `dot -T` format that writes them (None: the DOT text itself).
FORMATS: dict[str, str | None] = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None}

#: Ops drawn inside the node of the layer they follow, when that layer feeds only them.
_POST_OPS = {
    "batchnorm", "groupnorm", "layernorm", "lrn",
    "relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "leaky_relu",
}  # fmt: skip
#: Fill colour per op family; anything else is white.
_COLOURS = {
    "conv": "#dbe9f6",
    "linear": "#e8dcf2",
    "maxpool": "#fde5cc",
    "avgpool": "#fde5cc",
    "adaptive_avgpool": "#fde5cc",
    "adaptive_maxpool": "#fde5cc",
    "batchnorm": "#fff5c2",
    "groupnorm": "#fff5c2",
    "layernorm": "#fff5c2",
    "lrn": "#fff5c2",
    "dropout": "#eeeeee",
    "flatten": "#eeeeee",
}
_JOINS = {"add", "concat", "mul"}
_ACTIVATIONS = _POST_OPS - {"batchnorm", "groupnorm", "layernorm", "lrn"}
SKIP_COLOUR = "#d62728"


class GraphvizMissing(RuntimeError):
    """The `dot` program is not on PATH."""


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    """64×56×56, or a flat size."""
    return "×".join(str(d) for d in shape)


def _human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def _pair(v: object) -> str:
    if isinstance(v, (tuple, list)):
        return str(v[0]) if v[0] == v[1] else f"{v[0]}×{v[1]}"
    return str(v)


def _kernel(v: object) -> str:
    if isinstance(v, (tuple, list)):
        return f"{v[0]}×{v[1]}"
    return f"{v}×{v}"


def op_text(node: Node) -> str:
    """The op with its key arguments, the way papers label boxes: "conv 3×3, 64, /2"."""
    a, k = node.attrs, node.kind
    if k == "conv":
        parts = [f"conv {_kernel(a['kernel'])}", str(a["out"])]
        if _pair(a.get("stride", 1)) != "1":
            parts.append(f"/{_pair(a['stride'])}")
        if a.get("groups", 1) != 1:
            parts.append(f"g{a['groups']}")
        if _pair(a.get("dilation", 1)) != "1":
            parts.append(f"d{_pair(a['dilation'])}")
        return ", ".join(parts)
    if k == "linear":
        return f"linear {a['out']}"
    if k in ("maxpool", "avgpool"):
        stride = a.get("stride") or a["kernel"]
        text = f"{k} {_kernel(a['kernel'])}"
        return text + (f", /{_pair(stride)}" if _pair(stride) != "1" else "")
    if k.startswith("adaptive_"):
        return f"{k} {_kernel(a['size'])}"
    if k in ("dropout", "stochastic_depth"):
        return f"{k} {a.get('p')}"
    if k == "lrn":
        return f"lrn {a['size']}"
    if k == "groupnorm":
        return f"groupnorm {a['groups']}"
    if k == "add" and a.get("residual"):
        return "add"
    return k


def _where(node: Node) -> str:
    """The node's module path and a space, or nothing for a display name like "9" (flatten, joins)."""
    if not node.has_module and node.path.rsplit(".", 1)[-1].isdigit():
        return ""
    return node.path + " "


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


@dataclass
class _Unit:
    """One drawn node: the graph nodes it stands for and its label."""

    dot_id: str
    node_ids: list[int]
    lines: list[str]  # first line bold
    fill: str = "#ffffff"
    shape: str = "box"
    style: str = "rounded,filled"
    peripheries: int = 1


@dataclass
class _Cluster:
    """A drawn group: its label and what it contains (units and clusters, in order)."""

    dot_id: str
    label: str
    items: list[_Unit | _Cluster] = field(default_factory=list)


@dataclass
class Diagram:
    """The DOT text of a network and what it holds (for tests and reports)."""

    dot: str
    nodes: int
    clusters: int
    edges: int
    skip_edges: int


class _Builder:
    def __init__(self, graph: Graph, analysis: Analysis, depth: int | None, expand: bool, params: bool) -> None:
        self.graph, self.analysis = graph, analysis
        self.depth, self.expand, self.params = depth, expand, params
        self.unit_of: dict[int, str] = {}
        self.n_units = 0
        self.n_clusters = 0

    # ------------------------------------------------------------ units

    def _totals(self, ids: list[int]) -> tuple[int, int]:
        p = sum(self.analysis.params.get(i, (0, 0))[0] for i in ids)
        m = sum(self.analysis.macs.get(i, 0) for i in ids)
        return p, m

    def _stats_line(self, ids: list[int]) -> list[str]:
        if not self.params:
            return []
        p, m = self._totals(ids)
        if not p and not m:
            return []
        return [f"{p:,} params · {_human(m)} MACs"]

    def _unit(self, ids: list[int], lines: list[str], **style: object) -> _Unit:
        self.n_units += 1
        unit = _Unit(f"n{self.n_units}", ids, lines, **style)  # type: ignore[arg-type]
        for i in ids:
            self.unit_of[i] = unit.dot_id
        return unit

    def _layer_unit(self, chain: list[Node]) -> _Unit:
        head, last = chain[0], chain[-1]
        ops = " · ".join([op_text(head)] + [op_text(n) for n in chain[1:]])
        where = f"{_where(head)}→ {shape_text(last.out_shape)}"
        lines = [ops, where, *self._stats_line([n.id for n in chain])]
        if head.kind in _JOINS:
            return self._unit([n.id for n in chain], lines, fill="#f2f2f2", shape="box", style="rounded,filled,bold")
        fill = _COLOURS.get(head.kind, "#e3f4e1" if head.kind in _ACTIVATIONS else "#ffffff")
        return self._unit([n.id for n in chain], lines, fill=fill)

    def _block_unit(self, item: Item) -> _Unit:
        ids = item.node_ids
        last = self.graph.nodes[ids[-1]]
        if item.kind == "fold":
            first = item.instances[0].path
            title = f"{item.name} ×{item.count}"
            where = f"{item.path} (each like {first}) → {shape_text(last.out_shape)}"
            return self._unit(ids, [title, where, *self._stats_line(ids)], fill="#cfe3f7", peripheries=2)
        return self._unit(ids, [item.name, f"{item.path} → {shape_text(last.out_shape)}", *self._stats_line(ids)],
                          fill="#f7f1e3", shape="box3d", style="filled")

    # --------------------------------------------------------- structure

    def _fusable(self, prev: Node, node: Node) -> bool:
        return (
            not self.expand
            and node.kind in _POST_OPS
            and node.inputs == [prev.id]
            and self.graph.users(prev.id) == [node.id]
            and prev.scope == node.scope
        )

    def _joins_branches(self, item: Item) -> bool:
        """Whether the group ends in a join of several branches (an Inception module)."""
        last = self.graph.nodes[item.last]
        return last.kind in _JOINS and len(last.inputs) > 2

    def items(self, items: list[Item], level: int, branches: bool = False) -> list[_Unit | _Cluster]:
        """The drawn nodes and clusters of a list of items; branches: frame even one-node groups,
        so that Graphviz lays a join's branches side by side in their order."""
        out: list[_Unit | _Cluster] = []
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
                out.extend(self.items(item.instances, level))
            elif item.kind == "fold" or (self.depth is not None and level >= self.depth):
                out.append(self._block_unit(item))
            else:
                out.append(self._cluster(item, level, branches))
        flush()
        return out

    def _cluster(self, item: Item, level: int, branch: bool = False) -> _Unit | _Cluster:
        inner = self.items(item.children, level + 1, branches=self._joins_branches(item))
        if len(inner) == 1 and isinstance(inner[0], _Unit) and not branch:
            # A group drawn as one node needs no frame around it; its node says where it is.
            unit = inner[0]
            if not unit.lines[1].startswith(item.path):
                unit.lines[1] = f"{item.path}: {unit.lines[1]}"
            return unit
        assert item.group is not None
        self.n_clusters += 1
        label = item.path if item.group.kind != "block" else f"{item.path}: {describe(item)}"
        return _Cluster(f"cluster_{self.n_clusters}", label, inner)


def _unit_dot(u: _Unit, indent: str) -> str:
    first, *rest = u.lines
    label = f"<b>{_esc(first)}</b>" + "".join(f'<br/><font point-size="9">{_esc(x)}</font>' for x in rest)
    extra = f", peripheries={u.peripheries}" if u.peripheries != 1 else ""
    return (
        f'{indent}{u.dot_id} [label=<{label}>, shape={u.shape}, style="{u.style}", fillcolor="{u.fill}"{extra}];'
    )


def _emit(items: list[_Unit | _Cluster], indent: str, out: list[str]) -> None:
    for it in items:
        if isinstance(it, _Unit):
            out.append(_unit_dot(it, indent))
        else:
            out.append(f"{indent}subgraph {it.dot_id} {{")
            out.append(f'{indent}  label=<<b>{_esc(it.label)}</b>>; labeljust=l; style="rounded"; color="#9a9a9a";')
            _emit(it.items, indent + "  ", out)
            out.append(f"{indent}}}")


def to_dot(
    graph: Graph,
    analysis: Analysis,
    *,
    depth: int | None = None,
    expand: bool = False,
    rankdir: str = "TB",
    params: bool = False,
) -> Diagram:
    """The DOT text of a network: folded and fused by default, every layer when expand."""
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be TB, LR, BT or RL, not {rankdir!r}")
    b = _Builder(graph, analysis, depth, expand, params)
    inp = graph.input
    top: list[_Unit | _Cluster] = [
        b._unit([inp.id], [f"input {shape_text(inp.out_shape)}"], fill="#ffffff", shape="box", style="rounded")
    ]
    top += b.items(build_tree(graph), 0)

    out = [
        f"digraph {_dot_id(graph.network)} {{",
        f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.3, '
        f'label=<<b>{_esc(graph.network)}</b>: {_esc(shape_text(graph.input_shape))} → '
        f'{_esc(shape_text(graph.output_shape))}>, labelloc=t];',
        '  node [fontname="Helvetica", fontsize=11, margin="0.12,0.04", height=0.3];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555", fontcolor="#555555", arrowsize=0.6];',
    ]
    _emit(top, "  ", out)

    # One edge per pair of drawn nodes; shapes come from the producing node's out_shape. A pair
    # is a skip edge only when every edge it stands for is one: into a fold, the main path wins.
    seen: dict[tuple[str, str], bool] = {}
    labels: dict[tuple[str, str], str] = {}
    for node in graph.nodes:
        for pos, src in enumerate(node.inputs):
            a, z = b.unit_of[src], b.unit_of[node.id]
            if a == z:
                continue
            skip = pos in node.skip
            key = (a, z)
            seen[key] = seen.get(key, True) and skip
            labels[key] = shape_text(graph.nodes[src].out_shape)
    n_skip = 0
    for (a, z), skip in seen.items():
        label = _esc(labels[(a, z)])
        if skip:
            n_skip += 1
            out.append(
                f'  {a} -> {z} [xlabel="{label}", style=dashed, color="{SKIP_COLOUR}", '
                f'fontcolor="{SKIP_COLOUR}", penwidth=1.4, constraint=false];'
            )
        else:
            out.append(f'  {a} -> {z} [xlabel="{label}"];')
    out.append("}")
    return Diagram("\n".join(out) + "\n", b.n_units, b.n_clusters, len(seen), n_skip)


def _dot_id(name: str) -> str:
    return '"' + name.replace('"', r"\"") + '"'


def find_dot() -> str:
    """The path of Graphviz's `dot`; GraphvizMissing says how to install it."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(
            "Graphviz's `dot` program is not installed: install Graphviz (apt-get install graphviz, "
            "brew install graphviz or conda install graphviz), or write a .dot file, which needs no Graphviz"
        )
    return exe


def render(dot_text: str, path: Path, fmt: str | None) -> None:
    """Write DOT text to path, rendered by `dot -T<fmt>` unless fmt is None (the DOT text itself)."""
    if fmt is None:
        path.write_text(dot_text, encoding="utf-8")
        return
    exe = find_dot()
    args = [exe, f"-T{fmt}", "-o", str(path)]
    if fmt == "png":
        args.insert(1, "-Gdpi=110")
    done = subprocess.run(args, input=dot_text.encode("utf-8"), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dot failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()}")
