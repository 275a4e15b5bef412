"""The IR: a networkx DiGraph of pydantic nodes, each with its span and module path.

Nodes are created in topological order by the elaborator. Each node is one
layer, join or the input; `inputs` keeps the order of a node's operands
(the graph's edges carry the same information for analysis).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from cnnspec.diagnostics import Frame
from cnnspec.layers.init import path_matches
from cnnspec.syntax.source import Span

if TYPE_CHECKING:
    import networkx as nx

Shape = tuple[int, ...]


_Model = TypeVar("_Model", bound=BaseModel)


def construct_unchecked(cls: type[_Model], fields: dict[str, Any], fields_set: set[str] | None = None) -> _Model:
    """An instance of a pydantic model holding fields as given: no validation, no defaults filled in.

    For values the pipeline already checked (nodes, report rows), where
    validation would cost as much as the work that made them. fields_set:
    the set of field names to share with another instance that has the same
    ones (pydantic only ever adds names already in it, when a field is set).
    """
    if fields_set is None:
        every = every_field(cls)
        # Every field given (the usual case): share one set rather than make one per instance.
        fields_set = every if len(fields) == len(every) and fields.keys() == every else set(fields)
    obj = _new(cls)
    _set_dict(obj, fields)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def every_field(cls: type[BaseModel]) -> set[str]:
    """The names of all of a model's fields, as one shared set: the fields-set of an instance
    given every field (do not modify it)."""
    every = _EVERY_FIELD.get(cls)
    if every is None:
        every = _EVERY_FIELD[cls] = set(cls.model_fields)
    return every


_EVERY_FIELD: dict[type[BaseModel], set[str]] = {}


#: object.__new__ and the setters of a pydantic model's __dict__, fields-set, extra and private
#: slots, looked up once: what construct_unchecked does, for a loop that inlines it.
MODEL_SETTERS = (
    object.__new__,
    BaseModel.__dict__["__dict__"].__set__,
    BaseModel.__dict__["__pydantic_fields_set__"].__set__,
    BaseModel.__dict__["__pydantic_extra__"].__set__,
    BaseModel.__dict__["__pydantic_private__"].__set__,
)
_new, _set_dict, _set_fields_set, _set_extra, _set_private = MODEL_SETTERS


class Node(BaseModel):
    """One layer, join or input of a network."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: int
    kind: str
    #: Module path ("layer3.4.conv2"); for a function node, a display name in its scope.
    path: str
    #: Whether a torch module lives at `path` (False for flatten, joins and the input).
    has_module: bool
    inputs: tuple[int, ...] = ()
    attrs: dict[str, Any] = Field(default_factory=dict)
    in_shapes: tuple[Shape, ...] = ()
    out_shape: Shape
    span: Span
    trace: tuple[Frame, ...] = ()
    #: Module path of the enclosing group (block instance, named group), "" at the top.
    scope: str = ""
    #: Positions in `inputs` that are residual shortcuts (skip edges).
    skip: tuple[int, ...] = ()


class Group(BaseModel):
    """A module scope: a block instance or a named group."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    path: str
    kind: str  # "block", "group", "join", "residual", "repeat"
    name: str  # block name, or the group's own name
    span: Span
    args: dict[str, Any] = Field(default_factory=dict)


#: A group as the elaborator records it: (path, kind, name, span, args), Group's fields.
GroupRow = tuple[str, str, str, Span, dict[str, Any]]


class InitRule(BaseModel):
    """`init conv: weight = kaiming_normal(mode = "fan_out")` after evaluation."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

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


class AuxOutput(BaseModel):
    """An auxiliary output (`aux(weight = 0.3) { ... }`): returned in training mode only."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    node: int
    weight: float
    span: Span


class Copy(NamedTuple):
    """A run of nodes that replays an earlier block instance node for node, once or more times.

    Node `start + k` (k < count) has the kind, arguments and shapes of node
    `source + k`; its inputs are the source's shifted by `start - source`,
    except that whatever the source instance read from outside itself (its
    block input, `source_input`) the copy reads from `input`. Copies of the
    same source back to back, each reading the one before it (the copies of a
    repetition whose block keeps its input's shape), are one Copy: copy j is
    the `count` nodes from `start + j * count`, and reads copy j - 1's output.
    Passes use this to compute a copy's figures from its source's instead of
    afresh, and a run's from one copy's.
    """

    start: int
    source: int
    count: int
    input: int
    source_input: int
    #: The group path of each copy (its block instance), in order; one per copy.
    paths: list[str]
    #: The node whose value the last copy gives (`input` when a single copy's body passes the
    #: input on): the one node of the run that nodes after it may read.
    output: int

    @property
    def stop(self) -> int:
        """The id after the run's last node."""
        return self.start + self.count * len(self.paths)

    def single(self) -> list[Copy]:
        """The run as one Copy per copy, in order."""
        return [self.copy(j) for j in range(len(self.paths))]

    def copy(self, j: int) -> Copy:
        """Copy j of the run as a Copy of its own."""
        if len(self.paths) == 1:
            return self
        count = self.count
        first, at = self.start + j * count, self.output - self.stop + count  # at: the output's offset
        read = self.input if j == 0 else first - count + at
        return Copy(first, self.source, count, read, self.source_input, [self.paths[j]], first + at)


_COPY_START = itemgetter(0)


class Graph:
    """A fully elaborated network."""

    def __init__(self, network: str, params: dict[str, Any]) -> None:
        self.network = network
        self.params = params
        #: The nodes by id as elaboration adds them. A replayed block instance's places hold None
        #: until `nodes` is first read (see defer): a pass that reads only the nodes elaborated
        #: afresh (the runs without a Copy) can use this list and never make the copies.
        self.slots: list[Node | None] = []
        #: The deferred runs (first id, count, make) in id order, and their first ids.
        self._deferred: list[tuple[int, int, Callable[[int], list[Node]]]] = []
        self._deferred_starts: list[int] = []
        #: Built when first asked for (users()), with the node count it was built at.
        self._users: tuple[int, dict[int, list[int]]] | None = None
        #: Built when first asked for (g), with the node count it was built at.
        self._nx: tuple[int, nx.DiGraph] | None = None
        #: Each group as elaboration records it, in order: the Group models are made when
        #: `groups` is first read (a check alone never reads them; ResNet-152 has 58).
        self.group_rows: list[GroupRow] = []
        self._groups: dict[str, Group] = {}
        self._groups_built = 0
        self.init_rules: list[InitRule] = []
        self.aux: list[AuxOutput] = []
        self.output: int = -1
        #: Replayed block instances, in id order (see Copy).
        self.copies: list[Copy] = []
        #: Group path of each replayed block instance (and the groups inside it) -> the path
        #: of the instance first elaborated, which the copies are identical to.
        self.group_sources: dict[str, str] = {}
        self._origins: tuple[tuple[int, int], list[int]] | None = None
        self._runs: tuple[tuple[int, int], list[tuple[int, int, Copy | None]]] | None = None

    @property
    def groups(self) -> dict[str, Group]:
        """Every group (block instance, named group, join, residual, repetition) by path, in the
        order elaborated; a path recorded twice holds the later group."""
        rows = self.group_rows
        if self._groups_built < len(rows):
            groups, fields = self._groups, every_field(Group)
            for path, kind, name, span, args in rows[self._groups_built :]:
                groups[path] = construct_unchecked(
                    Group, {"path": path, "kind": kind, "name": name, "span": span, "args": args}, fields
                )
            self._groups_built = len(rows)
        return self._groups

    def add(self, node: Node) -> Node:
        """Append a node (its inputs must already be in the graph)."""
        self.slots.append(node)
        return node

    @property
    def nodes(self) -> list[Node]:
        """Every node, by id (node i is nodes[i]), in topological order."""
        if self._deferred:
            self._make_deferred(0, len(self.slots))
        return self.slots  # type: ignore[return-value]  # no place is None once the deferred are made

    def node_range(self, start: int, stop: int) -> list[Node]:
        """nodes[start:stop], making only the deferred nodes among them."""
        if self._deferred:
            self._make_deferred(start, stop)
        return self.slots[start:stop]  # type: ignore[return-value]

    def defer(self, count: int, make: Callable[[int], list[Node]]) -> int:
        """Reserve the next `count` ids, the first of which it returns, for the nodes make(first)
        returns when they are first read: all of them at once. For replayed instances (one, or the
        rest of a run of copies), whose nodes only the report's rows and the backends need one
        by one (the passes take their figures from their source's)."""
        start = len(self.slots)
        self.slots += [None] * count
        self._deferred.append((start, count, make))
        self._deferred_starts.append(start)
        return start

    def _make_deferred(self, start: int, stop: int) -> None:
        # Only the runs that can overlap [start, stop): from the last one starting at or before start.
        lo = max(bisect_right(self._deferred_starts, start) - 1, 0)
        hi = bisect_left(self._deferred_starts, stop)
        slots, left = self.slots, []
        for first, count, make in self._deferred[lo:hi]:
            if start < first + count:
                slots[first : first + count] = make(first)
            else:
                left.append((first, count, make))
        self._deferred[lo:hi] = left
        self._deferred_starts[lo:hi] = [first for first, _, _ in left]

    @property
    def g(self) -> nx.DiGraph:
        """The graph as a networkx DiGraph (node attribute "node", edge attribute "skip").

        Built on first use: `check` never needs it, and importing networkx
        would cost a third of the command line's start-up time.
        """
        if self._nx is None or self._nx[0] != len(self.slots):
            import networkx as nx

            g = nx.DiGraph()
            for node in self.nodes:
                g.add_node(node.id, node=node)
                for i, src in enumerate(node.inputs):
                    g.add_edge(src, node.id, skip=i in node.skip)
            self._nx = (len(self.slots), g)
        return self._nx[1]

    @property
    def input(self) -> Node:
        """The input node."""
        return self.slots[0]  # type: ignore[return-value]  # the input is never a copy

    @property
    def input_shape(self) -> Shape:
        """The network's input shape, batch excluded."""
        return self.input.out_shape

    @property
    def output_shape(self) -> Shape:
        """The network's output shape, batch excluded."""
        return self.node_range(self.output, self.output + 1)[0].out_shape

    def users(self, node_id: int) -> list[int]:
        """The nodes that consume node_id's output."""
        if self._users is None or self._users[0] != len(self.slots):
            users: dict[int, list[int]] = {n.id: [] for n in self.nodes}
            for n in self.nodes:
                for src in n.inputs:
                    u = users[src]
                    if n.id not in u:
                        u.append(n.id)
            self._users = (len(self.nodes), users)
        return list(self._users[1][node_id])

    def origins(self) -> list[int]:
        """For each node id, the id of the node it replays (through any chain of copies), else itself.

        The same list each time while the graph does not change: do not modify it.
        """
        key = (len(self.slots), len(self.copies))
        if self._origins is None or self._origins[0] != key:
            origin = list(range(len(self.slots)))
            for c in self.copies:
                origin[c.start : c.stop] = origin[c.source : c.source + c.count] * len(c.paths)
            self._origins = (key, origin)
        return self._origins[1]

    def origin(self, node_id: int) -> int:
        """The id of the node node_id replays (through any chain of copies), else node_id itself:
        one entry of origins(), without making the list."""
        copies = self.copies
        while True:
            i = bisect_right(copies, node_id, key=_COPY_START) - 1
            if i < 0:
                return node_id
            c = copies[i]
            if node_id >= c.stop:
                return node_id
            node_id = c.source + (node_id - c.start) % c.count

    def runs(self) -> list[tuple[int, int, Copy | None]]:
        """Every node id, in order, as runs (start, stop, copy): the nodes of replayed instances
        with their Copy, the nodes between them (elaborated afresh) with None.

        The same list each time while the graph does not change: do not modify it.
        """
        key = (len(self.slots), len(self.copies))
        if self._runs is not None and self._runs[0] == key:
            return self._runs[1]
        out: list[tuple[int, int, Copy | None]] = []
        i = 0
        for c in self.copies:
            if c.start > i:
                out.append((i, c.start, None))
            i = c.stop
            out.append((c.start, i, c))
        if i < len(self.slots):
            out.append((i, len(self.slots), None))
        self._runs = (key, out)
        return out

    def layers(self) -> list[Node]:
        """Every node but the input, in topological order."""
        return self.nodes[1:]
