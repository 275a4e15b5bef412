"""The module tree of a graph, with runs of identical block instances folded.

The summary table and the diagram both show a network as its groups (block
instances, named groups) nested as the spec nests them. Consecutive sibling
instances of the same block that are identical layer for layer (same ops,
arguments and shapes) fold into one item: ResNet-152's `layer3.1` ..
`layer3.35` become "Bottleneck ×35". An instance that differs, such as the
first of a stage with its stride and downsample projection, stays apart,
so a fold never hides a difference.

A looser fold covers instances that have the same structure (ops,
arguments, wiring, spatial shapes) and differ only in their channel counts:
DenseNet's `denselayer1` .. `denselayer6` each read 32 more channels than
the one before, so none is identical to the next, yet they read as one
"DenseLayer ×6 (channels vary)". It is marked as such wherever it is shown,
and used only where the identical fold does not cover the whole run. In
the same way, instances may differ in the arguments the layer table marks
as changing neither shapes, parameters nor compute (Arg.varies): rates
(dropout's and stochastic depth's p), EfficientNet's blocks each dropping
their residual path a little more often than the one before, read "MBConv ×3
(rates vary)"; shifts (window attention's), Swin's blocks alternating between
plain and shifted windows, read "SwinTransformerBlock ×6 (shifts vary)".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnspec.ir import Graph, Group, Node
from cnnspec.layers.kind import LayerKind
from cnnspec.layers.registry import per_table


@dataclass(slots=True)
class Item:
    """A layer, a group of items, or a fold of identical group instances."""

    kind: str  # "layer", "group" or "fold"
    path: str
    node: Node | None = None
    group: Group | None = None
    children: list[Item] = field(default_factory=list)
    #: For a fold: the folded group items, in order.
    instances: list[Item] = field(default_factory=list)
    #: For a fold: what differs between its instances ("channels", "rates", "shifts"); empty: identical.
    varies: tuple[str, ...] = ()
    #: node_ids, once asked for (folding keeps them: a fold holds the items it replaces).
    _ids: list[int] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def node_ids(self) -> list[int]:
        """Every node inside, in topological order (the same list each time: do not change it)."""
        ids = self._ids
        if ids is None:
            if self.node is not None:
                ids = [self.node.id]
            else:
                ids = []
                for kid in self.instances if self.kind == "fold" else self.children:
                    ids += kid.node_ids
            self._ids = ids
        return ids

    @property
    def last(self) -> int:
        """The id of the last node inside (whose output is the item's output)."""
        return self.node_ids[-1]

    @property
    def identical(self) -> bool:
        """Whether a fold's instances match layer for layer (True for anything else)."""
        return not self.varies

    @property
    def count(self) -> int:
        """How many instances a fold stands for (1 otherwise)."""
        return len(self.instances) if self.kind == "fold" else 1

    @property
    def name(self) -> str:
        """The op of a layer, the block or group name of a group, the block name of a fold."""
        if self.node is not None:
            return self.node.kind
        if self.kind == "fold":
            return self.instances[0].name
        assert self.group is not None
        return self.group.name

    def depth(self) -> int:
        """How many levels of groups lie below this item (0 for a layer)."""
        if self.kind == "layer":
            return 0
        kids = self.instances if self.kind == "fold" else self.children
        return 1 + max((k.depth() for k in kids if k.kind != "layer"), default=0)


def _chain(graph: Graph, scope: str) -> list[str]:
    """The group paths enclosing a scope, outermost first."""
    if not scope:
        return []
    parts = scope.split(".")
    return [p for p in (".".join(parts[: i + 1]) for i in range(len(parts))) if p in graph.groups]


@per_table
def _loose_args(kinds: dict[str, LayerKind]) -> dict[str, dict[str, str]]:
    """Per layer kind, the arguments that may vary within a fold, with what the fold calls them (Arg.varies)."""
    return {name: {a.name: a.varies for a in k.args if a.varies} for name, k in kinds.items()}


def _attrs_parts(a: dict, kind: str, loose: dict[str, dict[str, str]]) -> tuple[tuple, tuple]:
    """A node's arguments as (the rest as sorted (name, repr) pairs, the loose ones as sorted
    (what, name, repr) triples)."""
    free = loose.get(kind)
    items = sorted([(k, repr(v)) for k, v in a.items()])
    if not free:
        return tuple(items), ()
    return tuple([kv for kv in items if kv[0] not in free]), tuple([(free[k], k, v) for k, v in items if k in free])


def fold_path(first: str, last: str) -> str:
    """layer3.1-35, and features.denseblock1.denselayer1-6 rather than ...denselayer1-denselayer6."""
    a, z = first.rsplit(".", 1)[-1], last.rsplit(".", 1)[-1]
    stem = a.rstrip("0123456789")
    if stem and z.startswith(stem) and z[len(stem) :].isdigit():
        z = z[len(stem) :]
    return f"{first}-{z}"


#: What may differ between two instances of a loose fold: (channel counts, loose arguments).
_Varying = tuple[tuple, tuple]


def _loose_and_varying(item: Item, graph: Graph) -> tuple[tuple, _Varying]:
    """What must match for two block instances to fold (ops, arguments but the loose ones, spatial
    shapes, wiring), and what may differ: the channel counts, and the loose arguments (_loose_args).

    Two instances are identical exactly when all three parts are equal: a
    shape is its channel count (shape[:1]) followed by the rest (shape[1:]),
    and a node's arguments are its loose ones and the rest.
    """
    ids = item.node_ids
    index = {nid: i for i, nid in enumerate(ids)}
    prefix = item.path + "."
    cut = len(prefix)
    nodes = graph.nodes
    loose = _loose_args()
    sig = []
    channels = []
    loose_values = []
    for nid in ids:
        n = nodes[nid]
        parts = _attrs_parts(n.attrs, n.kind, loose)
        path = n.path
        in_shapes, out_shape = n.in_shapes, n.out_shape
        sig.append((
            n.kind,
            path[cut:] if path.startswith(prefix) else path,
            parts[0],
            (tuple([s[1:] for s in in_shapes]), out_shape[1:]),
            tuple([index.get(i, -1) for i in n.inputs]),
            n.skip,
        ))
        channels.append((tuple([s[:1] for s in in_shapes]), out_shape[:1]))
        if parts[1]:
            loose_values.extend(parts[1])
    return tuple(sig), (tuple(channels), tuple(loose_values))


def _fold(run: list[Item], varying: list[_Varying]) -> Item:
    """A fold of run; varying: each instance's channels and loose arguments (from _loose_and_varying)."""
    first = varying[0]
    channels = ("channels",) if any(v[0] != first[0] for v in varying[1:]) else ()
    # The instances have the same loose arguments in the same order (their signatures match).
    differ = {first[1][i][0] for v in varying[1:] for i, value in enumerate(v[1]) if value != first[1][i]}
    varies = channels + tuple(sorted(differ))
    return Item("fold", fold_path(run[0].path, run[-1].path), instances=list(run), varies=varies)


def _follows(prev: Item, item: Item, graph: Graph) -> bool:
    """Whether item reads only prev's output from outside itself: a chain, not parallel branches.

    Two branches of a join can be instances of one block, identical and next
    to each other in the tree (Inception-v3's branch1x1 and branch7x7_1 are
    both a 1×1 conv to 192 channels of the same input); "×2" would read as
    one after the other.
    """
    inside = set(item.node_ids)
    last = prev.last
    return all(src in inside or src == last for nid in item.node_ids for src in graph.nodes[nid].inputs)


def _fold_runs(items: list[Item], graph: Graph) -> list[Item]:
    """Fold runs of consecutive block instances: identically where the whole run is identical,
    loosely (channels, rates or shifts vary) where it differs only in those."""
    out: list[Item] = []
    run: list[Item] = []
    # The run's block name and node count, and (computed only once a second instance may
    # join: signatures are the costly part) its loose signature and each instance's channels
    # and loose arguments.
    run_key: tuple | None = None
    run_sig: tuple | None = None
    run_varying: list[_Varying] = []

    def flush() -> None:
        if len(run) < 2:
            out.extend(run)
            return
        # The whole run folds as one, so that a dense block is one "DenseLayer ×6 (channels
        # vary)" rather than a patchwork of small identical folds; the mark says what differs.
        # The instances' loose signatures match, so they are identical where their channel
        # counts and loose arguments are.
        out.append(_fold(run, run_varying))

    for item in items:
        if item.kind == "group" and item.group is not None and item.group.kind == "block":
            # Instances with different names or node counts cannot have the same signature.
            key = (item.group.name, len(item.node_ids))
            if run and key == run_key and _follows(run[-1], item, graph):
                if run_sig is None:
                    run_sig, varying = _loose_and_varying(run[0], graph)
                    run_varying = [varying]
                sig, varying = _loose_and_varying(item, graph)
                if sig == run_sig:
                    run.append(item)
                    run_varying.append(varying)
                    continue
                flush()
                run, run_key, run_sig, run_varying = [item], key, sig, [varying]
                continue
            flush()
            run, run_key, run_sig, run_varying = [item], key, None, []
        else:
            if run:
                flush()
                run, run_key, run_sig, run_varying = [], None, None, []
            out.append(item)
    flush()
    return out


def build_tree(graph: Graph) -> list[Item]:
    """The top-level items of a graph, groups nested and identical instances folded."""
    root = Item("group", "")
    stack: list[Item] = [root]
    chains: dict[str, list[str]] = {}
    for node in graph.layers():
        chain = chains.get(node.scope)
        if chain is None:
            chain = chains[node.scope] = _chain(graph, node.scope)
        # Close the open groups that do not enclose this node, then open the ones that do.
        depth = 0
        while depth < len(chain) and depth + 1 < len(stack) and stack[depth + 1].path == chain[depth]:
            depth += 1
        del stack[depth + 1 :]
        for path in chain[depth:]:
            item = Item("group", path, group=graph.groups[path])
            stack[-1].children.append(item)
            stack.append(item)
        stack[-1].children.append(Item("layer", node.path, node=node))

    def fold(item: Item) -> None:
        kids = item.children
        groups = False
        for child in kids:
            if child.kind != "layer":
                fold(child)
                groups = True
        if groups:  # only groups fold: a list of layers stays as it is
            item.children = _fold_runs(kids, graph)

    fold(root)
    return root.children


@dataclass
class Shown:
    """One item as shown at a given depth: its nesting level and whether it is opened."""

    level: int
    item: Item
    opened: bool


def visible(tree: list[Item], depth: int | None, expand: bool) -> list[Shown]:
    """The items shown when groups are opened `depth` levels deep (None: all).

    A fold stays one item unless `expand`, which shows its instances.
    """
    out: list[Shown] = []

    def walk(items: list[Item], level: int) -> None:
        for item in items:
            if item.kind == "fold" and expand:
                walk(item.instances, level)
                continue
            opened = item.kind == "group" and (depth is None or level < depth)
            out.append(Shown(level, item, opened))
            if opened:
                walk(item.children, level + 1)

    walk(tree, 0)
    return out


def max_depth(tree: list[Item]) -> int:
    """The deepest nesting of groups in a tree."""
    return max((item.depth() for item in tree), default=0)


def auto_depth(tree: list[Item], expand: bool, max_rows: int) -> int | None:
    """The deepest opening whose rows fit in max_rows (None when everything fits)."""
    deepest = max_depth(tree)
    if len(visible(tree, None, expand)) <= max_rows:
        return None
    best = 0
    for d in range(deepest + 1):
        if len(visible(tree, d, expand)) <= max_rows:
            best = d
    return best


def describe(item: Item) -> str:
    """A layer's op, a group's block name, "Bottleneck ×35" for a fold.

    A group whose items are all instances of one block says so: layer3 is
    "Stage: Bottleneck ×36", the way the paper's table reads.
    """
    if item.kind == "layer":
        return item.name
    if item.kind == "fold":
        return f"{item.name} ×{item.count}" + (f" ({' and '.join(item.varies)} vary)" if item.varies else "")
    kids = item.children
    same = all(
        k.kind in ("group", "fold") and k.name == kids[0].name and (k.group is None or k.group.kind == "block")
        for k in kids
    )
    n = sum(k.count for k in kids)
    if kids and same and n > 1:
        return f"{item.name}: {kids[0].name} ×{n}"
    return item.name
