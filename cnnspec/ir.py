"""The IR: a network's nodes in topological order, each an immutable record with its span and module path.

Nodes are created fully built, in topological order, by the elaborator, and
never change afterwards. Each node is one layer, join or the input; `inputs`
keeps the order of a node's operands. Graph algorithms (users, ancestors,
cut points) run on a networkx DiGraph built from the nodes on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from cnnspec.diagnostics import Frame
from cnnspec.layers.init import path_matches
from cnnspec.syntax.source import Span

if TYPE_CHECKING:
    import networkx as nx

Shape = tuple[int, ...]


class Node(NamedTuple):
    """One layer, join or input of a network: built once, with every field, by keyword.

    A named tuple rather than a frozen dataclass: a check of ResNet-152 makes ~500 of them
    and a frozen dataclass takes four times as long to build (its __init__ sets each field
    through object.__setattr__), a tenth of the in-process check budget (docs/performance.md).
    """

    id: int
    kind: str
    #: Module path ("layer3.4.conv2"); for a function node, a display name in its scope.
    path: str
    #: Whether a torch module lives at `path` (False for flatten, joins and the input).
    has_module: bool
    #: The layer's arguments (shared between nodes with equal arguments: never modify it).
    attrs: dict[str, Any]
    out_shape: Shape
    span: Span
    inputs: tuple[int, ...] = ()
    in_shapes: tuple[Shape, ...] = ()
    trace: tuple[Frame, ...] = ()
    #: Module path of the enclosing group (block instance, named group), "" at the top.
    scope: str = ""
    #: Positions in `inputs` that are residual shortcuts (skip edges).
    skip: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Group:
    """A module scope: a block instance or a named group."""

    path: str
    kind: str  # "block", "group", "join", "residual", "repeat"
    name: str  # block name, or the group's own name
    span: Span
    args: dict[str, Any] = field(default_factory=dict)


#: A group as the elaborator records it: (path, kind, name, span, args), Group's fields.
GroupRow = tuple[str, str, str, Span, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class InitRule:
    """`init conv: weight = kaiming_normal(mode = "fan_out")` after evaluation."""

    kind: str
    target: str
    scheme: str
    args: dict[str, Any]
    span: Span
    #: Only the layers whose module path matches (cnnspec.layers.init.path_matches); None: every one.
    pattern: str | None = None

    def selects(self, node: Node) -> bool:
        """Whether the rule re-initialises node: a layer of its kind, on a path its pattern matches."""
        return node.kind == self.kind and (self.pattern is None or path_matches(self.pattern, node.path))


@dataclass(frozen=True, slots=True)
class AuxOutput:
    """An auxiliary output (`aux(weight = 0.3) { ... }`): returned in training mode only."""

    name: str
    node: int
    weight: float
    span: Span


@dataclass(frozen=True, slots=True)
class CutMarker:
    """A `cut` in the spec: a pipeline boundary pinned right after node `node` (the value the marker
    reads). It adds no node, so module paths and the state_dict are those of the spec without it."""

    node: int
    span: Span
    trace: tuple[Frame, ...] = ()


class Graph:
    """A fully elaborated network."""

    def __init__(self, network: str, params: dict[str, Any]) -> None:
        self.network = network
        self.params = params
        #: Every node by id (node i is nodes[i]), in topological order.
        self.nodes: list[Node] = []
        #: Each group as elaboration records it, in order (see `groups`).
        self.group_rows: list[GroupRow] = []
        self.init_rules: list[InitRule] = []
        self.aux: list[AuxOutput] = []
        #: The spec's `cut` markers, in the order elaborated (cnnspec.analysis.pipeline pins them).
        self.cut_markers: list[CutMarker] = []
        self.output: int = -1
        # Derived views, built on first use and rebuilt if nodes or groups were added since.
        self._groups: tuple[int, dict[str, Group]] | None = None
        self._nx: tuple[int, nx.DiGraph] | None = None

    def add(self, node: Node) -> Node:
        """Append a node: its id is its place, and its inputs are already in the graph."""
        assert node.id == len(self.nodes), f"node {node.id} added at {len(self.nodes)}"
        self.nodes.append(node)
        return node

    @property
    def groups(self) -> dict[str, Group]:
        """Every group (block instance, named group, join, residual, repetition) by path, in the
        order elaborated; a path recorded twice holds the later group."""
        rows = self.group_rows
        if self._groups is None or self._groups[0] != len(rows):
            self._groups = (len(rows), {row[0]: Group(*row) for row in rows})
        return self._groups[1]

    @property
    def g(self) -> nx.DiGraph:
        """The graph as a networkx DiGraph (node attribute "node", edge attribute "skip").

        Built on first use: `check` never needs it, and importing networkx
        would cost a third of the command line's start-up time.
        """
        if self._nx is None or self._nx[0] != len(self.nodes):
            import networkx as nx

            g = nx.DiGraph()
            for node in self.nodes:
                g.add_node(node.id, node=node)
                for i, src in enumerate(node.inputs):
                    g.add_edge(src, node.id, skip=i in node.skip)
            self._nx = (len(self.nodes), g)
        return self._nx[1]

    @property
    def input(self) -> Node:
        """The input node."""
        return self.nodes[0]

    @property
    def input_shape(self) -> Shape:
        """The network's input shape, batch excluded."""
        return self.input.out_shape

    @property
    def output_shape(self) -> Shape:
        """The network's output shape, batch excluded."""
        return self.nodes[self.output].out_shape

    def users(self, node_id: int) -> list[int]:
        """The nodes that consume node_id's output, in id order."""
        return list(self.g.successors(node_id))

    def ancestors(self, node_id: int) -> set[int]:
        """node_id and every node it depends on."""
        import networkx as nx

        return nx.ancestors(self.g, node_id) | {node_id}

    def cut_points(self) -> list[int]:
        """The node ids after which exactly one tensor crosses: every later node reads only
        that node or nodes after it. Where a pipeline can cut the network into stages.

        Node ids are a topological order, so the tensors crossing the cut after node p are
        the edges u -> w with u <= p < w; p is a cut point when every such u is p itself.
        """
        g = self.g
        cuts: list[int] = []
        reach = -1  # the furthest node read by a node before the current one
        for p in range(len(self.nodes)):
            if reach <= p:
                cuts.append(p)
            reach = max(reach, *g.successors(p), p)
        return cuts

    def layers(self) -> list[Node]:
        """Every node but the input, in topological order."""
        return self.nodes[1:]
