"""The module tree of a graph, with runs of identical block instances folded.

The summary table and the diagram both show a network as its groups (block
instances, named groups) nested as the spec nests them. Consecutive sibling
instances of the same block that are identical layer for layer (same ops,
arguments and shapes) fold into one item: ResNet-152's `layer3.1` ..
`layer3.35` become "Bottleneck ×35". An instance that differs, such as the
first of a stage with its stride and downsample projection, stays apart,
so a fold never hides a difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnspec.ir import Graph, Group, Node


@dataclass
class Item:
    """A layer, a group of items, or a fold of identical group instances."""

    kind: str  # "layer", "group" or "fold"
    path: str
    node: Node | None = None
    group: Group | None = None
    children: list[Item] = field(default_factory=list)
    #: For a fold: the folded group items, in order.
    instances: list[Item] = field(default_factory=list)

    @property
    def node_ids(self) -> list[int]:
        """Every node inside, in topological order."""
        if self.node is not None:
            return [self.node.id]
        if self.kind == "fold":
            return [i for inst in self.instances for i in inst.node_ids]
        return [i for child in self.children for i in child.node_ids]

    @property
    def last(self) -> int:
        """The id of the last node inside (whose output is the item's output)."""
        return self.node_ids[-1]

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
        return 1 + max((k.depth() for k in kids), default=0)


def _chain(graph: Graph, scope: str) -> list[str]:
    """The group paths enclosing a scope, outermost first."""
    if not scope:
        return []
    parts = scope.split(".")
    return [p for p in (".".join(parts[: i + 1]) for i in range(len(parts))) if p in graph.groups]


def _relative(path: str, prefix: str) -> str:
    return path[len(prefix) + 1 :] if path.startswith(prefix + ".") else path


def signature(item: Item, graph: Graph) -> tuple:
    """What must match for two group instances to fold: ops, arguments, shapes, wiring."""
    ids = item.node_ids
    index = {nid: i for i, nid in enumerate(ids)}
    sig = []
    for nid in ids:
        n = graph.nodes[nid]
        wiring = tuple(index.get(i, -1) for i in n.inputs)
        attrs = tuple(sorted((k, repr(v)) for k, v in n.attrs.items()))
        shapes = (tuple(n.in_shapes), n.out_shape)
        sig.append((n.kind, _relative(n.path, item.path), attrs, shapes, wiring, tuple(n.skip)))
    return tuple(sig)


def _fold_runs(items: list[Item], graph: Graph) -> list[Item]:
    out: list[Item] = []
    run: list[Item] = []
    run_sig: tuple | None = None

    def flush() -> None:
        if len(run) >= 2:
            out.append(Item("fold", f"{run[0].path}-{run[-1].path.rsplit('.', 1)[-1]}", instances=list(run)))
        else:
            out.extend(run)

    for item in items:
        if item.kind == "group" and item.group is not None and item.group.kind == "block":
            sig = (item.group.name, signature(item, graph))
            if run and sig == run_sig:
                run.append(item)
                continue
            flush()
            run, run_sig = [item], sig
        else:
            flush()
            run, run_sig = [], None
            out.append(item)
    flush()
    return out


def build_tree(graph: Graph) -> list[Item]:
    """The top-level items of a graph, groups nested and identical instances folded."""
    root = Item("group", "")
    stack: list[Item] = [root]
    for node in graph.layers():
        chain = _chain(graph, node.scope)
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
        for child in item.children:
            fold(child)
        item.children = _fold_runs(item.children, graph)

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
        return f"{item.name} ×{item.count}"
    kids = item.children
    same = all(
        k.kind in ("group", "fold") and k.name == kids[0].name and (k.group is None or k.group.kind == "block")
        for k in kids
    )
    n = sum(k.count for k in kids)
    if kids and same and n > 1:
        return f"{item.name}: {kids[0].name} ×{n}"
    return item.name
