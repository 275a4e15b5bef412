"""Elaboration: from a Program's AST to the IR graph of one network.

Blocks are instantiated with their arguments bound, repetitions and loops
unrolled, `if` decided, and every module given its path. Shapes are inferred
as nodes are created, through each layer kind's shape rule, because a block
may read its input's shape (`in.channels`) to decide what it builds.

Errors do not stop elaboration: a statement that fails leaves an unknown
shape behind it, later statements skip the checks that need that shape, and
every independent problem is reported in one run.
"""

from __future__ import annotations

import sys
from collections import ChainMap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from typing import Any, NamedTuple

from cnnspec.diagnostics import Diagnostics, Frame, Note
from cnnspec.ir import AuxOutput, Graph, GroupRow, InitRule, Node
from cnnspec.layers.builtin import fmt
from cnnspec.layers.init import SCHEMES, TARGETS, pattern_problem
from cnnspec.layers.registry import ArgError, Attrs, LayerKind, ShapeError, all_kinds, lookup, suggest
from cnnspec.semantics.values import (
    LITERALS,
    MAX_WORK,
    UNKNOWN,
    WORK,
    EvalError,
    Ref,
    ShapeValue,
    charge,
    compiled,
    deep_size,
    evaluate,
    reset_work,
    show,
    type_name,
)
from cnnspec.syntax import ast
from cnnspec.syntax.loader import Program
from cnnspec.syntax.source import Span

JOINS = ("concat", "add", "mul")
#: Work units one statement costs (values.MAX_WORK counts list items as 1).
STATEMENT_WORK = 4


@dataclass(frozen=True)
class Limits:
    """Bounds that keep any spec from exhausting the machine."""

    #: Block instances nested in one another.
    max_depth: int = 64
    #: Bodies nested in one another (blocks, groups, joins, loops together). With
    #: a handful of Python frames per level this stays far below the recursion
    #: limit that deep_recursion sets, so no spec can overflow the stack.
    max_nesting: int = 400
    max_nodes: int = 1_000_000
    max_repeat: int = 1_000_000
    #: Statements run plus list items built (values.MAX_WORK).
    max_work: int = MAX_WORK


#: The limits analyse uses when none are given.
DEFAULT_LIMITS = Limits()


@dataclass
class _Scope:
    """A module namespace: a block instance, a named group or the network."""

    path: str
    counter: int = 0
    names: dict[str, Span] = field(default_factory=dict)
    #: The joins named in this scope, in the order written: [kind, node id once built].
    joins: list[list[Any]] = field(default_factory=list)

    def child(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def join(self, kind: str) -> list[Any]:
        """Reserve a join's place in the scope's order of joins; the node id is filled in when built."""
        entry: list[Any] = [kind, None]
        self.joins.append(entry)
        return entry


class _Ctx(NamedTuple):
    """What a statement sees: variables, the module scope, `in`, the block chain.

    A tuple (immutable, like a frozen dataclass) because one is made per block instance
    and group, and a frozen dataclass's __init__ sets each field through object.__setattr__.
    """

    env: Mapping[str, Any]
    scope: _Scope
    block_input: ShapeValue | None
    trace: tuple[Frame, ...] = ()
    blocks: tuple[str, ...] = ()


#: One node of a template as _replay needs it (see _Template.recipe).
_Step = tuple[Node, str, str, tuple[int, ...], tuple[tuple[str, str, Span], ...]]


@dataclass
class _Template:
    """The nodes one block instance produced (ids base_id to stop), to replay for an identical instance."""

    groups: list[GroupRow]
    base_id: int
    stop: int
    path: str
    depth: int
    out_node: int
    out_shape: tuple[int, ...]
    #: The node the instance read (its block input).
    input_node: int
    #: Per node: path and scope below the instance's path, inputs as offsets from base_id
    #: (-1: the block input), and the frames of nested blocks as (block, path below, span).
    #: Made on the first replay (most templates are never replayed); False: cannot replay.
    recipe: list[_Step] | bool | None = None


def _recipe(nodes: list[Node], path: str, base_id: int, depth: int) -> list[_Step] | None:
    """What _replay needs of each node, relative to the instance; None if a path lies outside it."""
    cut = len(path)
    prefix = path + "."
    out: list[_Step] = []
    for n in nodes:
        frames = n.trace[depth + 1 :]
        # Inside the instance: the instance's path itself, or a path below it.
        p, sc = n.path, n.scope
        if not (
            (p.startswith(prefix) or p == path)
            and (sc.startswith(prefix) or sc == path)
            and (not frames or all(f.path.startswith(prefix) or f.path == path for f in frames))
        ):
            return None
        out.append((
            n,
            n.path[cut:],
            n.scope[cut:],
            tuple([i - base_id if i >= base_id else -1 for i in n.inputs]),
            tuple([(f.block, f.path[cut:], f.span) for f in frames]) if frames else (),
        ))
    return out


def _replayed(recipe: list[_Step], new: str, source_input: int, head: tuple[Frame, ...], start: int) -> list[Node]:
    """The nodes of a replayed instance at path `new`, reading source_input, with the block chain
    `head` above it, at ids from start: its source's nodes, with what differs replaced."""
    new_object, set_dict, set_fields_set, set_extra, set_private = MODEL_SETTERS
    out: list[Node] = []
    for nid, (n, path, scope, inputs, frames) in enumerate(recipe, start):
        # The source's fields, then what differs; copying its dict is the cheap way to a node.
        fields = n.__dict__.copy()
        fields["id"] = nid
        fields["path"] = new + path
        fields["scope"] = new + scope
        fields["inputs"] = tuple([start + i if i >= 0 else source_input for i in inputs])
        fields["trace"] = head + tuple([Frame(b, new + p, sp) for b, p, sp in frames]) if frames else head
        # construct_unchecked, inlined: this loop runs once per replayed layer.
        node = new_object(Node)
        set_dict(node, fields)
        set_fields_set(node, n.__pydantic_fields_set__)
        set_extra(node, None)
        set_private(node, None)
        out.append(node)
    return out


def _replayed_run(
    recipe: list[_Step], paths: list[str], first_input: int, at: int, head: tuple[Frame, ...], block: str,
    span: Span, start: int,
) -> list[Node]:
    """The nodes of copies of one instance back to back, at paths, each reading the output (at
    offset `at`) of the one before it; the first reads first_input."""
    out: list[Node] = []
    count, source_input = len(recipe), first_input
    for j, new in enumerate(paths):
        first = start + j * count
        out += _replayed(recipe, new, source_input, (*head, Frame(block, new, span)), first)
        source_input = first + at
    return out


def _group_args(env: Mapping[str, Any]) -> dict[str, Any]:
    """A block instance's arguments as its Group records them: those with a known, plain value."""
    return {k: v for k, v in env.items() if v is not UNKNOWN and not isinstance(v, ShapeValue)}


def _freeze(v: Any) -> Any:
    """A hashable stand-in for a spec value, for memo keys: lists become tuples, and scalars carry
    their type, since 1, 1.0 and true are equal as Python keys but not as arguments. (An int may
    stand for itself beside these: it equals no tuple.)"""
    if isinstance(v, list):
        return tuple([_freeze(x) for x in v])
    if v is UNKNOWN:
        return v
    return (v.__class__, v)


@lru_cache(maxsize=8)
def _layer_refs(names: tuple[str, ...]) -> dict[str, Ref]:
    """The layer kinds as values, by name (Refs are immutable, so every check can share them)."""
    return {k: Ref(k, "layer") for k in names}


class _Value(NamedTuple):
    """The tensor flowing between statements: its producing node and shape (None if unknown)."""

    node: int
    shape: tuple[int, ...] | None


#: _make(_Value, (node, shape)): a NamedTuple without its generated __new__'s Python frame, for the
#: per-layer and per-instance paths (_Value, Copy, Frame).
_make = tuple.__new__


def select_network(program: Program, name: str | None, diags: Diagnostics) -> str | None:
    """The network to elaborate: the one named, or the main file's only (or same-named) network."""
    if name is not None:
        if name in program.networks:
            return name
        hint = suggest(name, list(program.networks))
        diags.error(
            "E501",
            f"no network named `{name}`",
            None,
            help=[f"did you mean `{hint}`?" if hint else "networks: " + (", ".join(program.networks) or "none")],
        )
        return None
    mains = program.main_networks
    if len(mains) == 1:
        return mains[0]
    stem = program.main_file.rsplit("/", 1)[-1].removesuffix(".cnn")
    if stem in mains:
        return stem
    if not mains:
        if len(program.networks) == 1:
            return next(iter(program.networks))
        diags.error("E502", f"{program.main_file} defines no network", None, help=["add `network Name { ... }`"])
    else:
        diags.error(
            "E503",
            f"{program.main_file} defines several networks: {', '.join(mains)}",
            None,
            help=["choose one with --network NAME"],
        )
    return None


class Elaborator:
    """Builds the IR graph of one network, collecting diagnostics."""

    def __init__(
        self, program: Program, diags: Diagnostics, limits: Limits | None = None, *, replay: bool = False
    ) -> None:
        """replay=False elaborates every block instance afresh (the tests compare the two ways)."""
        self.program = program
        self.replay = replay
        self.diags = diags
        self.limits = limits or DEFAULT_LIMITS
        self.graph: Graph | None = None
        self.used_blocks: set[str] = set()
        self._too_big = False
        self._nesting = 0
        # For W003 (shortcut never built) and W004 (let never used).
        self._shortcuts_seen: dict[int, ast.Shortcut] = {}
        self._shortcuts_built: set[int] = set()
        #: The `init` statements with a module path pattern (for W007: one that matches nothing).
        self._init_patterns: dict[int, tuple[ast.InitStmt, InitRule]] = {}
        self._templates: dict[tuple[Any, ...], _Template] = {}
        # A layer statement's checked arguments, by the statement and the values of the names
        # its arguments read: the same statement in another instance of its block usually
        # reads the same values (layer2.0 and layer2.1 differ in stride only).
        self._attrs_seen: dict[tuple[Any, ...], Attrs] = {}
        #: Per variable environment (by id, kept alive with it): the names an expression can read.
        self._scopes: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}
        # Block and layer names are values too (`unit = BasicBlock`); parameters shadow them.
        #: The layer table as of this elaboration (a dict read, not a call, per statement).
        self._kinds = all_kinds()
        self.refs: dict[str, Ref] = {**_layer_refs(tuple(self._kinds))}
        self.refs.update({k: Ref(k, "block") for k in program.blocks})

    # ------------------------------------------------------------ network

    def network(
        self, name: str, overrides: Mapping[str, Any], input_shape: tuple[int, ...] | None = None
    ) -> Graph | None:
        """Elaborate a network with parameter overrides; None when it has errors."""
        reset_work(self.limits.max_work)
        item = self.program.networks[name]
        bound: dict[str, Any] = {}
        if isinstance(item, ast.NetworkAlias):
            target = self.program.networks.get(item.target)
            if not isinstance(target, ast.NetworkDef):
                defined = [n for n, v in self.program.networks.items() if isinstance(v, ast.NetworkDef)]
                hint = suggest(item.target, defined)
                self.diags.error(
                    "E501",
                    f"`{item.target}` is not a network defined with a body",
                    item.target_span,
                    help=[f"did you mean `{hint}`?"] if hint else [],
                )
                return None
            bound = self._bind(target.name, target.params, item.args, item.span, self.refs, None, kind="network")
            if bound is None:  # the arguments were wrong, and said so
                return None
            definition = target
        else:
            definition = item
        params = self._network_params(name, definition, bound, overrides)
        if params is None:
            return None
        graph = Graph(name, params)
        self.graph = graph
        scope = _Scope("")
        ctx = _Ctx(env=params, scope=scope, block_input=None)
        body = list(definition.body)
        cur = self._input(body, ctx, input_shape, definition)
        if cur is None:
            return None
        ctx = ctx._replace(block_input=ShapeValue(cur.shape) if cur.shape else None)
        cur = self._body(body, cur, ctx, top=True)
        self._close(scope)
        graph.output = cur.node
        if not self.diags.has_errors:
            self._shortcut_warnings()
            self._init_pattern_warnings()
        return graph

    def _network_params(
        self, name: str, definition: ast.NetworkDef, bound: dict[str, Any], overrides: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        declared = {p.name: p for p in definition.params}
        ok = True
        for key in overrides:
            if key not in declared:
                hint = suggest(key, list(declared))
                listed = ", ".join(_param_text(p) for p in definition.params) or "none"
                self.diags.error(
                    "E504",
                    f"network `{name}` has no parameter `{key}`",
                    None,
                    help=([f"did you mean `{hint}`?"] if hint else []) + [f"its parameters: {listed}"],
                )
                ok = False
        env: dict[str, Any] = {}
        for p in definition.params:
            if p.name in overrides:
                value = overrides[p.name]
                if isinstance(value, ast.Expr):
                    try:
                        value = evaluate(value, ChainMap(env, self.refs))
                    except EvalError as e:
                        self._eval_error(e, ())
                        ok = False
                        continue
                expected = bound.get(p.name)
                if expected is None and p.default is not None:
                    try:
                        expected = evaluate(p.default, ChainMap(env, self.refs))
                    except EvalError:
                        expected = None
                if isinstance(expected, Ref) and isinstance(value, str) and value in self.refs:
                    value = self.refs[value]  # the Python API names blocks by string
                if expected is not None and not _same_type(expected, value):
                    self.diags.error(
                        "E505",
                        f"--set {p.name}: expected {_a(type_name(expected))} like {show(expected)}, "
                        f"got {_a(type_name(value))} ({show(value)})",
                        p.span,
                        help=[f"the default of `{p.name}` is {show(expected)}; give a value of the same type"],
                    )
                    ok = False
                env[p.name] = value
            elif p.name in bound:
                env[p.name] = bound[p.name]
            elif p.default is not None:
                try:
                    env[p.name] = evaluate(p.default, ChainMap(env, self.refs))
                except EvalError as e:
                    self._eval_error(e, ())
                    ok = False
            else:
                self.diags.error(
                    "E506",
                    f"network parameter `{p.name}` has no value",
                    p.span,
                    help=[f"give it a default, or pass --set {p.name}=VALUE"],
                )
                ok = False
        return env if ok else None

    def _input(
        self, body: list[ast.Stmt], ctx: _Ctx, override: tuple[int, ...] | None, definition: ast.NetworkDef
    ) -> _Value | None:
        assert self.graph is not None
        stmt = body[0] if body and isinstance(body[0], ast.InputStmt) else None
        shape: tuple[int, ...] | None = None
        if stmt is not None:
            body.pop(0)
            dims = []
            for d in stmt.dims:
                v = self._eval(d, ctx)
                if v is UNKNOWN:
                    return None
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    self.diags.error("E212", f"an input dimension must be a positive int, got {show(v)}", d.span)
                    return None
                dims.append(v)
            if len(dims) not in (1, 3):
                self.diags.error(
                    "E213",
                    f"the input must be C x H x W or a flat size, got {len(dims)} dimensions",
                    stmt.span,
                )
                return None
            shape = tuple(dims)
        if override is not None:
            shape = override
        if shape is None:
            self.diags.error(
                "E214",
                f"network `{definition.name}` does not say its input shape",
                definition.name_span,
                help=["start its body with `input: 3 x 224 x 224`, or pass --input 3x224x224"],
            )
            return None
        span = stmt.span if stmt is not None else definition.name_span
        node = Node(id=0, kind="input", path="x", has_module=False, out_shape=shape, span=span)
        self.graph.add(node)
        return _Value(0, shape)

    # ---------------------------------------------------------- statements

    def _body(self, stmts: list[ast.Stmt], cur: _Value, ctx: _Ctx, top: bool = False) -> _Value:
        if self._nesting >= self.limits.max_nesting:
            if not self._too_big:
                self.diags.error(
                    "E603",
                    f"blocks and groups are nested more than {self.limits.max_nesting} deep",
                    stmts[0].span if stmts else None,
                    trace=ctx.trace,
                )
            self._too_big = True
            return _Value(cur.node, None)
        self._nesting += 1
        work = WORK
        try:
            for stmt in stmts:
                if self._too_big:
                    return _Value(cur.node, None)
                # A statement costs far more than a list item: weigh it so that
                # MAX_WORK bounds loops that build nothing to seconds, not minutes.
                work.spent += STATEMENT_WORK  # charge(STATEMENT_WORK, stmt.span), inlined
                if work.spent > work.limit:
                    try:
                        charge(0, stmt.span)
                    except EvalError as e:
                        self._eval_error(e, ctx.trace)
                        self._too_big = True
                        return _Value(cur.node, None)
                t = type(stmt)
                if t is ast.CallStmt:  # most statements: straight there, not through _stmt
                    cur = self._call_stmt(stmt, cur, ctx)  # type: ignore[arg-type]
                elif t is ast.LetStmt:
                    ctx = ctx._replace(env={**ctx.env, stmt.name: self._eval(stmt.value, ctx)})  # type: ignore[attr-defined]
                else:
                    cur = self._stmt(stmt, cur, ctx, top)
            return cur
        finally:
            self._nesting -= 1

    def _stmt(self, stmt: ast.Stmt, cur: _Value, ctx: _Ctx, top: bool = False) -> _Value:
        if self._too_big:
            return _Value(cur.node, None)
        if isinstance(stmt, ast.CallStmt):
            return self._call_stmt(stmt, cur, ctx)
        if isinstance(stmt, ast.GroupStmt):
            if stmt.name in JOINS:
                return self._join(stmt, cur, ctx)
            return self._group(stmt, cur, ctx)
        if isinstance(stmt, ast.ResidualStmt):
            return self._residual(stmt, cur, ctx)
        if isinstance(stmt, ast.IfStmt):
            return self._if(stmt, cur, ctx, top)
        if isinstance(stmt, ast.ForStmt):
            return self._for(stmt, cur, ctx)
        if isinstance(stmt, ast.InitStmt):
            if top and not ctx.trace:
                self._init(stmt, ctx)
            else:
                self.diags.error(
                    "E406",
                    "`init` belongs at the top level of a network",
                    stmt.span,
                    help=[
                        "move it to the network's top level, or into an `if` there; "
                        'to reach only some layers, add a path pattern: `init conv "layer1.*.conv1": ...`'
                    ],
                )
            return cur
        if isinstance(stmt, ast.AuxStmt):
            return self._aux(stmt, cur, ctx)
        if isinstance(stmt, ast.LetStmt):
            self.diags.error(
                "E409",
                "`let` cannot be a branch of a join",
                stmt.span,
                help=["put the `let` before the join, or inside a branch's `{ ... }`"],
            )
            return cur
        if isinstance(stmt, ast.InputStmt):
            self.diags.error(
                "E407",
                "`input` may only open a network's body",
                stmt.span,
                help=["a block takes its input from the statement before it"],
            )
            return cur
        raise AssertionError(f"unknown statement {stmt!r}")  # pragma: no cover

    def _name(self, scope: _Scope, label: ast.Label | None, span: Span) -> str:
        """The next module path in scope: the label, or the statement's position."""
        if label is None:
            name, where = str(scope.counter), span
            scope.counter += 1
            if name not in scope.names:  # a position: a name of digits, unless a label took it
                scope.names[name] = where
                return f"{scope.path}.{name}" if scope.path else name
        else:
            name, where = label.text, label.span
            scope.counter += 1
        if not name or "." in name:
            # `.` separates module paths: "a.b" would silently nest a module in another.
            self.diags.error(
                "E218",
                f'the name "{name}" cannot name a module: it is empty or has a `.`',
                where,
                help=["use letters, digits and `_`"],
            )
            name = f"_{scope.counter - 1}"
        if name in scope.names:
            self.diags.error(
                "E404",
                f"the name `{name}` is used twice in {scope.path or 'the network'}",
                where,
                notes=[Note("first used here", scope.names[name])],
                help=["give each layer in a scope its own name"],
            )
        scope.names[name] = where
        return f"{scope.path}.{name}" if scope.path else name  # scope.child(name), without the call

    def _close(self, scope: _Scope) -> None:
        """Name the scope's joins, now that every label in it is known.

        A join takes no position (its siblings keep theirs) and holds no
        parameters; it is named by its kind, numbered in the order the joins
        are written when the scope has several (`concat`, `concat_1`, ...),
        skipping any name a label or position of the scope already took.
        """
        if not scope.joins:
            return
        graph = self.graph
        assert graph is not None
        taken = set(scope.names)
        count: dict[str, int] = {}
        for kind, node_id in scope.joins:
            if node_id is None:
                continue
            n = count.get(kind, 0)
            name = kind if n == 0 else f"{kind}_{n}"
            while name in taken:
                n += 1
                name = f"{kind}_{n}"
            count[kind] = n + 1
            taken.add(name)
            graph.nodes[node_id] = replace(graph.nodes[node_id], path=scope.child(name))  # H2: until H1's rewrite
        scope.joins.clear()

    def _call_stmt(self, stmt: ast.CallStmt, cur: _Value, ctx: _Ctx) -> _Value:
        bound = ctx.env.get(stmt.name)
        name = bound.name if isinstance(bound, Ref) else stmt.name
        kind = self._kinds.get(name)
        block = self.program.blocks.get(name) if kind is None else None  # a layer kind wins
        if kind is None and block is None:
            self._unknown_callee(stmt)
            for a in stmt.args:  # still report errors inside the arguments
                self._eval(a.value, ctx)
            return _Value(cur.node, None)
        if kind is not None and kind.arity == "many":
            self.diags.error(
                "E103",
                f"`{kind.name}` joins branches and takes a body",
                stmt.span,
                help=[f"write `{kind.name} {{ branch1; branch2 }}`"],
            )
            return _Value(cur.node, None)
        label = stmt.label
        if stmt.repeat is None:
            path = self._name(ctx.scope, label, stmt.span)
            if kind is not None:
                return self._layer(kind, stmt, cur, ctx, path)
            return self._block(block, stmt, cur, ctx, path)  # type: ignore[arg-type]
        count = self._eval(stmt.repeat, ctx)
        if count is UNKNOWN:
            return _Value(cur.node, None)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.diags.error(
                "E217", f"a repetition count must be an int of at least 0, got {show(count)}", stmt.repeat.span
            )
            return _Value(cur.node, None)
        if count > self.limits.max_repeat:
            self.diags.error(
                "E601",
                f"repeating {count:,} times exceeds the limit of {self.limits.max_repeat:,}",
                stmt.repeat.span,
                trace=ctx.trace,
            )
            return _Value(cur.node, None)
        memo: dict[str, Any] = {}
        labels: list[ast.Label] | None = None
        if label is not None and label.is_template:
            names = self._template_names(label, count)
            if names is None:
                return _Value(cur.node, None)
            labels = list(map(partial(ast.Label, is_template=False, span=label.span), names))
        elif label is not None:
            path = self._name(ctx.scope, label, stmt.span)
            self._group_info(path, "repeat", stmt.name, stmt.span)
            scope = _Scope(path)
            ctx = ctx._replace(scope=scope)
        before = len(self.graph.nodes) if self.graph is not None else 0
        for i in range(count):
            path = self._name(ctx.scope, labels[i] if labels else None, stmt.span)
            cur = self._emit(kind, block, stmt, cur, ctx, path, memo)
            if self._too_big or (i == 0 and self._overflows(before, count - 1, stmt.span, ctx)):
                break
            if i and block is not None and i + 1 < count:
                template = self._fixed_point(memo, cur, count - i - 1)
                if template is not None:
                    # Every copy left would replay this template on this shape, each one extending
                    # the run of copies: add them together (ResNet-152's layer3: 33 of its 36).
                    paths = []  # a loop, not a comprehension: a closure would slow every call of this method
                    for j in range(i + 1, count):
                        paths.append(self._name(ctx.scope, labels[j] if labels else None, stmt.span))
                    cur = self._replay_run(template, cur, ctx, block.name, stmt.span, paths, memo["args"])
                    break
        if label is not None and labels is None:
            self._close(ctx.scope)
        return cur

    def _template_names(self, label: ast.Label, count: int) -> list[str] | None:
        text = label.text
        start, _, rest = text.partition("{")
        number, close, end = rest.partition("}")
        if not close or not number.isdigit() or "{" in end or "}" in end:
            self.diags.error(
                "E218",
                f'the naming template "{text}" needs one {{N}} where N is the first number',
                label.span,
                help=['write "denselayer{1}" to name copies denselayer1, denselayer2, ...'],
            )
            return None
        first = int(number)
        return [f"{start}{first + i}{end}" for i in range(count)]

    def _unknown_callee(self, stmt: ast.CallStmt) -> None:
        names = list(all_kinds()) + list(self.program.blocks)
        hint = suggest(stmt.name, names)
        helps = [f"did you mean `{hint}`?"] if hint else []
        if stmt.name in self.program.networks:
            helps = ["a network cannot be used as a layer; define the shared part as a `block`"]
        helps.append("see `cnnspec layers` for the built-in layers")
        self.diags.error("E101", f"unknown layer or block `{stmt.name}`", stmt.name_span, help=helps)

    def _emit(
        self,
        kind: LayerKind | None,
        block: ast.BlockDef | None,
        stmt: ast.CallStmt,
        cur: _Value,
        ctx: _Ctx,
        path: str,
        memo: dict[str, Any] | None = None,
    ) -> _Value:
        """One call of a layer or block. memo: shared by the copies of a repetition, whose arguments
        are evaluated in the same context and so evaluate alike: a block's first binding is reused
        (a layer's arguments are memoised for every call, by _args_key)."""
        if kind is not None:
            return self._layer(kind, stmt, cur, ctx, path)
        assert block is not None
        return self._block(block, stmt, cur, ctx, path, memo)

    # ---------------------------------------------------------------- layers

    def _layer(self, kind: LayerKind, stmt: ast.CallStmt, cur: _Value, ctx: _Ctx, path: str) -> _Value:
        key = _args_key(kind, stmt, ctx)
        try:
            attrs = self._attrs_seen.get(key) if key is not None else None
        except TypeError:  # an unhashable value: no memo
            attrs = key = None
        if attrs is None:
            n_diags = len(self.diags.items)
            attrs = self._layer_args(kind, stmt, ctx)
            if attrs is not None and key is not None and len(self.diags.items) == n_diags:
                self._attrs_seen[key] = attrs
        out: tuple[int, ...] | None = None
        if attrs is not None and cur.shape is not None:
            try:
                out = kind.shape(attrs, cur.shape)
            except ShapeError as e:
                self._shape_error(e, stmt.span, ctx, cur)
        return self._node(
            kind.name, path, kind.module is not None, (cur.node,), (cur.shape,), attrs or Attrs(), out, stmt.span, ctx
        )

    def _layer_args(self, kind: LayerKind, stmt: ast.CallStmt, ctx: _Ctx) -> Attrs | None:
        plan = _arg_plan(kind, stmt)
        if plan is None:  # the call's shape is wrong (unknown, repeated, missing arguments): say how
            return self._layer_args_checked(kind, stmt, ctx)
        given, checks, template = plan
        ev, values = self._eval, {}
        for name, expr in given.items():  # in the order written (a loop: no closure over ctx)
            values[name] = ev(expr, ctx)
        attrs = Attrs(template)  # every argument in the kind's order; each required one is given
        ok = True
        for name, check in checks:
            value = values[name]
            if value is UNKNOWN:
                ok = False
                continue
            try:
                attrs[name] = check(value)
            except ArgError as e:
                self._arg_error(e, kind, name, given[name].span, ctx)
                ok = False
        return attrs if ok else None

    def _arg_error(self, e: ArgError, kind: LayerKind, name: str, span: Span, ctx: _Ctx) -> None:
        message = f"`{kind.name}` argument `{name}`: {e}"
        self.diags.error(e.code, message, span, help=[f"signature: {kind.signature()}"], trace=ctx.trace)

    def _layer_args_checked(self, kind: LayerKind, stmt: ast.CallStmt, ctx: _Ctx) -> Attrs | None:
        """_layer_args for a call whose arguments do not fit the kind's signature: every problem
        reported in the order written."""
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        ok = True
        names, defaults = _arg_table(kind)
        positional = [a for a in stmt.args if a.name is None]
        if len(positional) > len(kind.args):
            self.diags.error(
                "E210",
                f"`{kind.name}` takes at most {len(kind.args)} positional argument"
                f"{'s' if len(kind.args) != 1 else ''}, got {len(positional)}",
                positional[len(kind.args)].span,
                help=[f"signature: {kind.signature()}"],
                trace=ctx.trace,
            )
            ok = False
        for i, a in enumerate(stmt.args):
            if a.name is None:
                if i >= len(kind.args):
                    continue
                name = kind.args[i].name
            else:
                name = a.name
                if name not in names:
                    hint = suggest(name, names)
                    self.diags.error(
                        "E209",
                        f"`{kind.name}` has no argument `{name}`",
                        a.span,
                        help=([f"did you mean `{hint}`?"] if hint else []) + [f"signature: {kind.signature()}"],
                        trace=ctx.trace,
                    )
                    ok = False
                    continue
            if name in values:
                self.diags.error(
                    "E208",
                    f"argument `{name}` is given twice",
                    a.span,
                    help=[f"signature: {kind.signature()}"],
                    trace=ctx.trace,
                )
                ok = False
                continue
            values[name] = self._eval(a.value, ctx)
            spans[name] = a.value.span
        attrs = Attrs()
        for spec in kind.args:
            if spec.name not in values:
                if spec.required:
                    self.diags.error(
                        "E207",
                        f"`{kind.name}` needs its argument `{spec.name}`",
                        stmt.span,
                        help=[f"signature: {kind.signature()}"],
                        trace=ctx.trace,
                    )
                    ok = False
                    continue
                attrs[spec.name] = defaults[spec.name]
                continue
            value = values[spec.name]
            if value is UNKNOWN:
                ok = False
                continue
            try:
                attrs[spec.name] = spec.check(value)
            except ArgError as e:
                self._arg_error(e, kind, spec.name, spans[spec.name], ctx)
                ok = False
        return attrs if ok else None

    def _shape_error(self, e: ShapeError, span: Span, ctx: _Ctx, cur: _Value) -> None:
        self.diags.error(
            e.code, str(e), span, notes=[Note(n) for n in e.notes], help=[e.help] if e.help else [], trace=ctx.trace
        )

    def _node(
        self,
        kind: str,
        path: str,
        has_module: bool,
        ids: tuple[int, ...],
        in_shapes: tuple[tuple[int, ...] | None, ...],
        attrs: Attrs,
        out: tuple[int, ...] | None,
        span: Span,
        ctx: _Ctx,
        skip: tuple[int, ...] = (),
    ) -> _Value:
        graph = self.graph
        assert graph is not None
        if len(graph.nodes) >= self.limits.max_nodes:
            if not self._too_big:
                self.diags.error(
                    "E602",
                    f"the network has more than {self.limits.max_nodes:,} layers",
                    span,
                    help=["check the repetition counts"],
                )
            self._too_big = True
            return _Value(ids[0], None)
        known = out is not None and None not in in_shapes
        nid = len(graph.nodes)
        graph.add(Node(
            id=nid,
            kind=kind,
            path=path,
            has_module=has_module,
            inputs=ids,
            attrs=attrs,  # shared: the memoised arguments of equal calls are one Attrs
            in_shapes=in_shapes if known else (),  # type: ignore[arg-type]  # known: no None among them
            out_shape=out if known else (),  # type: ignore[arg-type]
            span=span,
            trace=ctx.trace,
            scope=ctx.scope.path,
            skip=skip,
        ))
        return _make(_Value, (nid, out if known else None))

    # ---------------------------------------------------------------- blocks

    def _block(
        self,
        block: ast.BlockDef,
        stmt: ast.CallStmt,
        cur: _Value,
        ctx: _Ctx,
        path: str,
        memo: dict[str, Any] | None = None,
    ) -> _Value:
        # The copies of a repetition share one binding, so they keep their templates by input shape.
        seen = memo.get("templates") if memo else None
        if seen and cur.shape in seen:
            # A later copy of a repetition, on the shape a copy before it was replayed on: that
            # copy passed the checks below in the same context, and bound the same arguments.
            template = seen[cur.shape]
            if len(self.graph.nodes) + len(template.recipe) < self.limits.max_nodes:  # type: ignore[union-attr,arg-type]
                self._group_info(path, "block", block.name, stmt.span, memo["args"])  # type: ignore[index]
                return self._replay(template, cur, ctx, _make(Frame, (block.name, path, stmt.span)))
        self.used_blocks.add(block.name)
        if block.name in ctx.blocks:
            cycle = " -> ".join(ctx.blocks[ctx.blocks.index(block.name) :] + (block.name,))
            self.diags.error(
                "E405",
                f"block `{block.name}` instantiates itself: {cycle}",
                stmt.name_span,
                notes=[Note(f"`{block.name}` is defined here", block.name_span)],
                help=["blocks cannot be recursive; repeat with `*` instead"],
            )
            return _Value(cur.node, None)
        if len(ctx.blocks) >= self.limits.max_depth:
            self.diags.error(
                "E603",
                f"blocks are nested more than {self.limits.max_depth} deep",
                stmt.name_span,
                trace=ctx.trace,
            )
            return _Value(cur.node, None)
        env = memo.get("env") if memo else None
        if env is None:
            n_diags = len(self.diags.items)
            env = self._bind(block.name, block.params, stmt.args, stmt.span, ctx.env, ctx, kind="block")
            if env is None:
                return _Value(cur.node, None)
            if memo is not None and len(self.diags.items) == n_diags:
                memo["env"], memo["items"], memo["args"] = env, self._memo_items(env), _group_args(env)
                memo["templates"] = {}
        args = memo["args"] if memo and "args" in memo else _group_args(env)
        self._group_info(path, "block", block.name, stmt.span, args)
        graph = self.graph
        assert graph is not None
        frame = _make(Frame, (block.name, path, stmt.span))
        # A block sees only its arguments and its input shape, so an instance with
        # the same ones elaborates to the same nodes: replay them (ResNet-152 has
        # 50 bottlenecks but 8 distinct ones) instead of walking the body again.
        # Read again: a repetition's first copy has only now made its memo's templates.
        seen = memo.get("templates") if memo else None
        items = memo["items"] if memo and "items" in memo else self._memo_items(env)
        key = None if items is None or cur.shape is None else (id(block), items, cur.shape)
        template = self._templates.get(key) if key is not None and self.replay else None
        if template is not None and template.recipe is None:
            nodes = graph.node_range(template.base_id, template.stop)
            template.recipe = _recipe(nodes, template.path, template.base_id, template.depth) or False
        if (
            template is not None
            and template.recipe
            and len(graph.nodes) + len(template.recipe) < self.limits.max_nodes  # type: ignore[arg-type]
        ):
            if seen is not None:
                seen[cur.shape] = template
            return self._replay(template, cur, ctx, frame)
        inner = _Ctx(
            env=env,
            scope=_Scope(path),
            # With an unknown input, still walk the body for errors that do not depend on shapes.
            block_input=ShapeValue(cur.shape) if cur.shape is not None else None,
            trace=ctx.trace + (frame,),
            blocks=ctx.blocks + (block.name,),
        )
        n_diags, n_nodes, n_aux = len(self.diags.items), len(graph.nodes), len(graph.aux)
        n_groups = len(graph.group_rows)
        out = self._body(block.body, cur, inner)
        self._close(inner.scope)
        clean = len(self.diags.items) == n_diags and len(graph.aux) == n_aux and not self._too_big
        if key is not None and clean and out.shape is not None:
            prefix = path + "."
            self._templates[key] = _Template(
                stop=len(graph.nodes),
                # Its groups were made by its body, after the n_groups before it.
                groups=[r for r in graph.group_rows[n_groups:] if r[0].startswith(prefix)],
                base_id=n_nodes,
                path=path,
                depth=len(ctx.trace),
                out_node=out.node,
                out_shape=out.shape,
                input_node=cur.node,
            )
        return out

    def _memo_items(self, env: Mapping[str, Any]) -> tuple | None:
        """The arguments' part of a block instance's memo key; None when they cannot be one."""
        # Freezing large list arguments would cost more than the replay saves: at most 1000
        # items in all, as deep_size counts them (a scalar is one).
        size = len(env)
        items = []
        for k, v in env.items():
            if v.__class__ is not int:  # an int stands for itself (see _freeze)
                if v is UNKNOWN:
                    return None
                if isinstance(v, list):
                    size += deep_size(v, 1000) - 1
                    if size > 1000:
                        return None
                v = _freeze(v)
            items.append((k, v))
        if size > 1000:
            return None
        key = tuple(items)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def _replay(self, t: _Template, cur: _Value, ctx: _Ctx, frame: Frame) -> _Value:
        graph = self.graph
        recipe, base = t.recipe, t.base_id
        count = len(recipe)  # type: ignore[arg-type]  # a template is replayed once it has a recipe
        new, source_input = frame.path, cur.node
        # The nodes are made only if something reads them one by one (rows, backends): the
        # passes take a copy's figures from its source's through the Copy.
        start = graph.defer(count, partial(_replayed, recipe, new, source_input, ctx.trace + (frame,)))  # type: ignore[union-attr]
        out = t.out_node - base + start if t.out_node >= base else source_input
        copies = graph.copies  # type: ignore[union-attr]
        last = copies[-1] if copies else None
        if (
            last is not None
            and last.output == source_input  # it reads the copy before it,
            and last.output >= last.start  # which gives a node of its own
            and out >= start  # as this one does,
            and start == last.stop  # and ends where this one starts;
            and last.source == base  # the same nodes (an instance and its first nested instance
            and last.count == count  # start alike: the count tells them apart)
        ):
            last.paths.append(new)  # one more copy of the run
            copies[-1] = _make(Copy, (*last[:5], last.paths, out))
        else:
            copies.append(_make(Copy, (start, base, count, source_input, t.input_node, [new], out)))
        self._copy_groups(t, new)
        return _make(_Value, (out, t.out_shape))

    def _fixed_point(self, memo: dict[str, Any], cur: _Value, left: int) -> _Template | None:
        """The template the copies left of a repetition would all replay, each one extending the
        run of copies that ends at cur: one whose output has its input's shape, replayed last.
        None when that is not so, or when the copies left would not fit under max_nodes."""
        seen = memo.get("templates")
        t = seen.get(cur.shape) if seen else None
        if t is None or t.out_shape != cur.shape or not t.recipe or t.out_node < t.base_id:
            return None
        graph = self.graph
        assert graph is not None
        last = graph.copies[-1] if graph.copies else None
        count = len(t.recipe)  # type: ignore[arg-type]
        if (
            last is None
            or last.source != t.base_id
            or last.count != count
            or last.output != cur.node
            or last.stop != len(graph.nodes)
            or len(graph.nodes) + left * count >= self.limits.max_nodes
        ):
            return None
        return t

    def _replay_run(
        self, t: _Template, cur: _Value, ctx: _Ctx, block: str, span: Span, paths: list[str], args: dict[str, Any]
    ) -> _Value:
        """_replay for each of paths in turn, the copies extending the last run (see _fixed_point)."""
        graph = self.graph
        assert graph is not None
        count = len(t.recipe)  # type: ignore[arg-type]
        at = t.out_node - t.base_id  # the output's offset in a copy
        start = graph.defer(
            count * len(paths), partial(_replayed_run, t.recipe, paths, cur.node, at, ctx.trace, block, span)
        )
        last = graph.copies[-1]
        last.paths.extend(paths)
        out = start + count * (len(paths) - 1) + at
        graph.copies[-1] = _make(Copy, (*last[:5], last.paths, out))
        for new in paths:
            self._group_info(new, "block", block, span, args)
            self._copy_groups(t, new)
        return _make(_Value, (out, t.out_shape))

    def _copy_groups(self, t: _Template, new: str) -> None:
        """A replayed instance at path new: where its group comes from, and the groups inside it
        (its source's, moved there)."""
        graph = self.graph
        assert graph is not None
        sources = graph.group_sources
        sources[new] = sources.get(t.path, t.path)
        cut = len(t.path)
        rows = graph.group_rows
        for path, kind, name, span, args in t.groups:
            new_path = new + path[cut:]
            rows.append((new_path, kind, name, span, args))
            sources[new_path] = sources.get(path, path)

    def _bind(
        self,
        name: str,
        params: list[ast.Param],
        args: list[ast.Arg],
        span: Span,
        env: Mapping[str, Any],
        ctx: _Ctx | None,
        kind: str,
    ) -> dict[str, Any] | None:
        """Bind call arguments to parameters; defaults may use earlier parameters."""
        # A call at the network's level has no `in`; a block's arguments see their caller's.
        block_input, trace = (ctx.block_input, ctx.trace) if ctx else (None, ())
        if _fills_in_order(params, args):  # most calls: every parameter, by position
            given = {}  # a loop, not a comprehension, whose closure would slow all of _bind
            for p, a in zip(params, args, strict=True):
                given[p.name] = self._value(a.value, env, block_input, trace)
            return given
        names = [p.name for p in params]
        values: dict[str, Any] = {}
        ok = True
        positional = [a for a in args if a.name is None]
        if len(positional) > len(params):
            self.diags.error(
                "E210",
                f"{kind} `{name}` takes {len(params)} argument{'s' if len(params) != 1 else ''}, "
                f"got {len(positional)} positional",
                positional[len(params)].span,
                help=[f"signature: {_signature(name, params)}"],
                trace=trace,
            )
            ok = False
        for i, a in enumerate(args):
            if a.name is None:
                if i >= len(params):
                    continue
                pname = params[i].name
            else:
                pname = a.name
                if pname not in names:
                    hint = suggest(pname, names)
                    self.diags.error(
                        "E209",
                        f"{kind} `{name}` has no parameter `{pname}`",
                        a.span,
                        help=([f"did you mean `{hint}`?"] if hint else []) + [f"signature: {_signature(name, params)}"],
                        trace=trace,
                    )
                    ok = False
                    continue
            if pname in values:
                self.diags.error("E208", f"argument `{pname}` is given twice", a.span)
                ok = False
                continue
            values[pname] = self._value(a.value, env, block_input, trace)
        bound: dict[str, Any] = {}
        for p in params:
            if p.name in values:
                bound[p.name] = values[p.name]
            elif kind == "network":
                continue  # the network's own defaults and --set fill the rest
            elif p.default is not None:
                try:
                    bound[p.name] = evaluate(p.default, ChainMap(bound, self.refs))
                except EvalError as e:
                    self._eval_error(e, trace)
                    ok = False
            else:
                self.diags.error(
                    "E207",
                    f"{kind} `{name}` needs its argument `{p.name}`",
                    span,
                    help=[f"signature: {_signature(name, params)}"],
                    trace=trace,
                )
                ok = False
        return bound if ok else None

    # ------------------------------------------------- groups, joins, residual

    def _group_info(self, path: str, kind: str, name: str, span: Span, args: dict[str, Any] | None = None) -> None:
        """Record a group; args: a block instance's plain arguments (_group_args)."""
        self.graph.group_rows.append((path, kind, name, span, {} if args is None else args))  # type: ignore[union-attr]

    def _scoped(self, stmt: ast.Stmt, ctx: _Ctx, name: str | None, kind: str, what: str) -> _Ctx:
        """A new module scope when the statement is named; otherwise the same scope."""
        label = stmt.label
        if name is not None and label is not None:
            self.diags.error(
                "E408",
                f"the group `{name}` already has a name; drop the label `{label.text}:`",
                label.span,
            )
        if name is None and label is None:
            return ctx
        lab = label if label is not None else ast.Label(name or "", False, stmt.span)
        path = self._name(ctx.scope, lab, stmt.span)
        self._group_info(path, kind, what, stmt.span)
        return ctx._replace(scope=_Scope(path))

    def _group(self, stmt: ast.GroupStmt, cur: _Value, ctx: _Ctx) -> _Value:
        if stmt.name is not None and (lookup(stmt.name) is not None or stmt.name in self.program.blocks):
            self.diags.error(
                "E104",
                f"`{stmt.name}` is a layer or block, not a group name",
                stmt.name_span,
                help=[f"to name a group, write `name: {{ ... }}`; to call `{stmt.name}`, use `{stmt.name}(...)`"],
            )
            return _Value(cur.node, None)
        inner = self._scoped(stmt, ctx, stmt.name, "group", stmt.name or (stmt.label.text if stmt.label else ""))
        out = self._body(stmt.body, cur, inner)
        self._closed(inner, ctx)
        return out

    def _closed(self, inner: _Ctx, outer: _Ctx) -> None:
        """Close the scope a labelled statement opened (an unlabelled one shares its enclosing scope)."""
        if inner.scope is not outer.scope:
            self._close(inner.scope)

    def _join(self, stmt: ast.GroupStmt, cur: _Value, ctx: _Ctx) -> _Value:
        assert stmt.name is not None
        kind = lookup(stmt.name)
        assert kind is not None
        if len(stmt.body) < 2:
            self.diags.error(
                "E410",
                f"`{stmt.name}` needs at least two branches, got {len(stmt.body)}",
                stmt.span,
                help=["each statement in the braces is one branch; group a branch's layers with `{ ... }`"],
            )
            return _Value(cur.node, None)
        inner = self._scoped(stmt, ctx, None, "join", stmt.name)
        entry = inner.scope.join(kind.name)  # named in the order written: before the joins in its branches
        outs = [self._stmt(branch, cur, inner) for branch in stmt.body]
        names = [_branch_name(b) for b in stmt.body]
        out = self._join_node(
            kind, outs, stmt.span, inner, (), branch_spans=[b.span for b in stmt.body], branch_names=names, entry=entry
        )
        self._closed(inner, ctx)
        return out

    def _join_node(
        self,
        kind: LayerKind,
        outs: list[_Value],
        span: Span,
        ctx: _Ctx,
        skip: tuple[int, ...],
        branch_spans: list[Span] | None = None,
        residual: bool = False,
        branch_names: list[str] | None = None,
        entry: list[Any] | None = None,
    ) -> _Value:
        shape: tuple[int, ...] | None = None
        if all(o.shape is not None for o in outs):
            names = [n or f"branch {i + 1}" for i, n in enumerate(branch_names or [""] * len(outs))]
            try:
                shape = kind.shape(Attrs(branches=names), tuple(o.shape for o in outs))  # type: ignore[misc]
            except ShapeError as e:
                notes = [
                    Note(f"{n} gives {fmt(o.shape)}", s)
                    for n, o, s in zip(names, outs, branch_spans or [], strict=False)
                    if o.shape
                ]
                self.diags.error(e.code, str(e), span, notes=notes, help=[e.help] if e.help else [], trace=ctx.trace)
        graph = self.graph
        assert graph is not None
        n_nodes = len(graph.nodes)
        # The path is provisional: the scope names its joins when it closes (_close).
        out = self._node(
            kind.name,
            ctx.scope.child(kind.name),
            False,
            tuple([o.node for o in outs]),
            tuple([o.shape for o in outs]),
            Attrs(residual=residual),
            shape,
            span,
            ctx,
            skip=skip,
        )
        if entry is not None and len(graph.nodes) > n_nodes:
            entry[1] = out.node
        return out

    def _residual(self, stmt: ast.ResidualStmt, cur: _Value, ctx: _Ctx) -> _Value:
        inner = self._scoped(stmt, ctx, None, "residual", "residual")
        out = self._residual_join(stmt, cur, inner)
        self._closed(inner, ctx)
        return out

    def _residual_join(self, stmt: ast.ResidualStmt, cur: _Value, ctx: _Ctx) -> _Value:
        entry = ctx.scope.join("add")  # named in the order written: before the joins in its body
        body = self._body(stmt.body, cur, ctx)
        add = lookup("add")
        assert add is not None
        if body.shape is None or cur.shape is None:
            return _Value(body.node, None)
        if body.shape == cur.shape:
            if stmt.shortcut is not None:
                self._shortcuts_seen[id(stmt.shortcut)] = stmt.shortcut
            return self._join_node(add, [body, cur], stmt.span, ctx, skip=(1,), residual=True, entry=entry)
        sc = stmt.shortcut
        if sc is None:
            self.diags.error(
                "E302",
                f"residual: body gives {fmt(body.shape)}, input is {fmt(cur.shape)}, and there is no shortcut",
                stmt.span,
                help=[
                    "add a projection used where identity cannot fit: "
                    f"`}} shortcut downsample {{ conv({body.shape[0]}, 1, stride = ...); batchnorm }}`"
                ],
                trace=ctx.trace,
            )
            return _Value(body.node, None)
        self._shortcuts_built.add(id(sc))
        sc_ctx = ctx
        if sc.name is not None:
            path = self._name(ctx.scope, ast.Label(sc.name, False, sc.span), sc.span)
            self._group_info(path, "group", sc.name, sc.span)
            sc_ctx = ctx._replace(scope=_Scope(path))
        proj = self._body(sc.body, cur, sc_ctx)
        self._closed(sc_ctx, ctx)
        if proj.shape is None:
            return _Value(body.node, None)
        if proj.shape != body.shape:
            self.diags.error(
                "E302",
                f"residual: the body gives {fmt(body.shape)} but the shortcut gives {fmt(proj.shape)}",
                sc.span,
                notes=[Note(f"the input is {fmt(cur.shape)}")],
                help=["make the shortcut's output match the body's: the same channels and stride"],
                trace=ctx.trace,
            )
            return _Value(body.node, None)
        return self._join_node(add, [body, proj], stmt.span, ctx, skip=(1,), residual=True, entry=entry)

    def _aux(self, stmt: ast.AuxStmt, cur: _Value, ctx: _Ctx) -> _Value:
        assert self.graph is not None
        weight: Any = 1.0
        for a in stmt.args:
            if a.name not in (None, "weight"):
                hint = ["did you mean `weight`?"] if suggest(a.name or "", ["weight"]) else []
                self.diags.error(
                    "E209", f"`aux` has no argument `{a.name}`", a.span, help=[*hint, "signature: aux(weight = 1.0)"]
                )
                continue
            weight = self._eval(a.value, ctx)
        if weight is not UNKNOWN and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0):
            self.diags.error("E212", f"an aux weight must be a number of at least 0, got {show(weight)}", stmt.span)
            weight = UNKNOWN
        inner = self._scoped(stmt, ctx, None, "aux", "aux")
        out = self._body(stmt.body, cur, inner)
        self._closed(inner, ctx)
        if out.node == cur.node and out.shape is not None:
            self.diags.error("E411", "`aux` needs at least one layer", stmt.span, trace=ctx.trace)
        elif weight is not UNKNOWN:
            if weight == 0:
                self.diags.warning(
                    "W005",
                    "this auxiliary head has weight 0: its output is computed and ignored by the loss",
                    stmt.span,
                    help=["give it a positive weight, or remove the `aux` head"],
                    trace=ctx.trace,
                )
            name = stmt.label.text if stmt.label is not None else f"aux{len(self.graph.aux) + 1}"
            self.graph.aux.append(AuxOutput(name=name, node=out.node, weight=float(weight), span=stmt.span))
        return cur

    # ---------------------------------------------------------- control flow

    def _if(self, stmt: ast.IfStmt, cur: _Value, ctx: _Ctx, top: bool = False) -> _Value:
        """`if` decided; at a network's top level its branches are too (`init` may stand in them)."""
        cond = self._eval(stmt.cond, ctx)
        if cond is UNKNOWN:
            return _Value(cur.node, None)
        if not isinstance(cond, bool):
            self.diags.error(
                "E220", f"`if` needs true or false, got a {type_name(cond)} ({show(cond)})", stmt.cond.span
            )
            return _Value(cur.node, None)
        inner = self._scoped(stmt, ctx, None, "group", "if")
        if cond:
            return self._body(stmt.then, cur, inner, top)
        if stmt.orelse is not None:
            return self._body(stmt.orelse, cur, inner, top)
        return cur

    def _for(self, stmt: ast.ForStmt, cur: _Value, ctx: _Ctx) -> _Value:
        items = self._eval(stmt.iter, ctx)
        if items is UNKNOWN:
            return _Value(cur.node, None)
        if not isinstance(items, list):
            self.diags.error(
                "E221",
                f"`for` needs a list, got a {type_name(items)}",
                stmt.iter.span,
                help=["use range(n) to repeat n times"],
            )
            return _Value(cur.node, None)
        inner = self._scoped(stmt, ctx, None, "group", "for")
        before = len(self.graph.nodes) if self.graph is not None else 0
        for i, item in enumerate(items):
            cur = self._body(stmt.body, cur, inner._replace(env={**inner.env, stmt.var: item}))
            if self._too_big or (i == 0 and self._overflows(before, len(items) - 1, stmt.span, ctx)):
                break
        return cur

    def _overflows(self, before: int, copies_left: int, span: Span, ctx: _Ctx) -> bool:
        """After the first copy of a repetition: E602 now if the rest would pass max_nodes.

        Copies usually have the size of the first, so a million-fold repetition
        fails at once instead of after building a million layers.
        """
        assert self.graph is not None
        per_copy = len(self.graph.nodes) - before
        total = len(self.graph.nodes) + per_copy * copies_left
        if per_copy == 0 or total <= self.limits.max_nodes:
            return False
        self.diags.error(
            "E602",
            f"the network has more than {self.limits.max_nodes:,} layers: {copies_left + 1:,} copies of "
            f"{per_copy:,} layer{'s' if per_copy != 1 else ''} would make {total:,}",
            span,
            help=["check the repetition counts"],
            trace=ctx.trace,
        )
        self._too_big = True
        return True

    def _init(self, stmt: ast.InitStmt, ctx: _Ctx) -> None:
        assert self.graph is not None
        kind = lookup(stmt.kind)
        if kind is None:
            hint = suggest(stmt.kind, list(all_kinds()))
            self.diags.error(
                "E106",
                f"`init` names an unknown layer `{stmt.kind}`",
                stmt.kind_span,
                help=[f"did you mean `{hint}`?"] if hint else [],
            )
            return
        if stmt.pattern is not None:
            problem = pattern_problem(stmt.pattern)
            if problem is not None:
                self.diags.error(
                    "E225",
                    f'`init` cannot match module paths with "{stmt.pattern}": {problem}',
                    stmt.pattern_span,
                    help=['write dot-separated names, each maybe with `*`, like "layer*.*.bn3"'],
                )
                return
        for a in stmt.assigns:
            if a.target not in TARGETS:
                self.diags.error("E222", f"`init` sets `weight` or `bias`, not `{a.target}`", a.span)
                continue
            if a.scheme not in SCHEMES:
                hint = suggest(a.scheme, list(SCHEMES))
                self.diags.error(
                    "E108",
                    f"unknown initialisation `{a.scheme}`",
                    a.span,
                    help=([f"did you mean `{hint}`?"] if hint else []) + ["schemes: " + ", ".join(SCHEMES)],
                )
                continue
            allowed, _ = SCHEMES[a.scheme]
            args: dict[str, Any] = {}
            for arg in a.args:
                if arg.name is None or arg.name not in allowed:
                    self.diags.error(
                        "E224",
                        f"`{a.scheme}` takes the keyword arguments {', '.join(allowed) or 'none'}",
                        arg.span,
                    )
                    continue
                args[arg.name] = self._eval(arg.value, ctx)
            rule = InitRule(
                kind=stmt.kind, target=a.target, scheme=a.scheme, args=args, span=a.span, pattern=stmt.pattern
            )
            self.graph.init_rules.append(rule)
            if stmt.pattern is not None:
                self._init_patterns[id(stmt)] = (stmt, rule)  # its rules select alike: one will do

    def _init_pattern_warnings(self) -> None:
        """W007 for each `init` pattern that matches no layer of its kind."""
        if not self._init_patterns:
            return
        assert self.graph is not None
        layers = self.graph.layers()
        for stmt, rule in self._init_patterns.values():
            if not any(map(rule.selects, layers)):
                near = sorted(n.path for n in layers if n.kind == stmt.kind)[:3]
                self.diags.warning(
                    "W007",
                    f'`init {stmt.kind} "{stmt.pattern}"` matches no {stmt.kind} layer, so it changes nothing',
                    stmt.pattern_span,
                    help=[
                        f"{stmt.kind} layers here include {', '.join(near)}"
                        if near
                        else f"the network has no {stmt.kind} layer"
                    ],
                )

    # --------------------------------------------------------------- helpers

    def _shortcut_warnings(self) -> None:
        for key, sc in self._shortcuts_seen.items():
            if key not in self._shortcuts_built:
                self.diags.warning(
                    "W003",
                    "this shortcut is never built: in every instance the body keeps the input's shape, "
                    "so the identity is used",
                    sc.span,
                    help=["remove the shortcut, or check the body's channels and stride"],
                )

    def _eval(self, e: ast.Expr, ctx: _Ctx) -> Any:
        """The value of an expression in a statement's context; UNKNOWN, reported, when it has none."""
        return self._value(e, ctx.env, ctx.block_input if ctx.block_input is not None else UNKNOWN, ctx.trace)

    def _value(self, e: ast.Expr, env: Mapping[str, Any], block_input: Any, trace: tuple[Frame, ...]) -> Any:
        """The value of e in env, `in` being block_input (None: an error to use it); UNKNOWN,
        reported with trace, when it has none."""
        # Literals and plain names (most arguments) need neither the combined scope nor a walk.
        t = type(e)
        if t in LITERALS:
            return e.value  # type: ignore[attr-defined]
        if t is ast.Name and (v := env.get(e.id, _MISSING)) is not _MISSING:  # type: ignore[attr-defined]
            return v
        try:
            return compiled(e)(self._scope(env), block_input)
        except EvalError as err:
            self._eval_error(err, trace)
            return UNKNOWN

    def _scope(self, env: Mapping[str, Any]) -> dict[str, Any]:
        """Block and layer names under the variables of env, as one dict (made once per env:
        an environment is not changed once statements see it)."""
        got = self._scopes.get(id(env))
        if got is None or got[0] is not env:
            got = self._scopes[id(env)] = (env, {**self.refs, **env})
        return got[1]

    def _eval_error(self, e: EvalError, trace: tuple[Frame, ...]) -> None:
        self.diags.error(e.code, str(e), e.span, help=[e.help] if e.help else [], trace=trace)


def _args_key(kind: LayerKind, stmt: ast.CallStmt, ctx: _Ctx) -> tuple[Any, ...] | None:
    """What a layer statement's checked arguments depend on; None when a value it reads is UNKNOWN.

    Arguments are expressions of the names they read (variables of the
    scope, and block or layer names, which do not change within a check)
    and of `in`; nothing else enters them. The key may be unhashable (a value
    that is not), which the caller's dict lookup finds out.
    """
    if not stmt.args:  # batchnorm, relu: the statement and the kind its name calls say it all
        return (id(stmt), kind.name)
    got = _ARG_NAMES.get(id(stmt))
    if got is None or got[0] is not stmt:
        if len(_ARG_NAMES) >= _ARG_NAMES_MAX:
            _ARG_NAMES.clear()
        names = _names_used([a.value for a in stmt.args], set())
        got = _ARG_NAMES[id(stmt)] = (stmt, tuple(sorted(names - {"in"})), "in" in names)
    _, names, reads_in = got
    if not names:
        values: tuple[Any, ...] = ()
    else:
        get, found = ctx.env.get, []
        for n in names:  # a loop: a comprehension would be a closure call, its names cells
            v = get(n, _MISSING)
            # An int stands for itself: no other value's stand-in equals it (see _freeze).
            found.append(v if v.__class__ is int else _freeze(v))
        values = tuple(found)
        if UNKNOWN in values:
            return None
    return (id(stmt), kind.name, values, ctx.block_input.dims if reads_in and ctx.block_input is not None else None)


_MISSING = object()
#: Per layer statement (by id, with the statement, which keeps the id from being reused): the
#: names its arguments read and whether they read `in`. A fact of the parsed text, which the
#: parse cache keeps across checks, so it is kept across checks too (bounded, for long runs).
_ARG_NAMES: dict[int, tuple[ast.CallStmt, tuple[str, ...], bool]] = {}
_ARG_NAMES_MAX = 100_000
#: Per block or network call (by the ids of its arguments and of the parameters it binds, with
#: both): whether it gives every parameter by position. A fact of the parsed text, like _ARG_NAMES.
_IN_ORDER: dict[tuple[int, int], tuple[list[ast.Arg], list[ast.Param], bool]] = {}


def _fills_in_order(params: list[ast.Param], args: list[ast.Arg]) -> bool:
    """Whether args give every one of params, in order, by position (nothing to check or default)."""
    got = _IN_ORDER.get((id(args), id(params)))
    if got is None or got[0] is not args or got[1] is not params:
        if len(_IN_ORDER) >= _ARG_NAMES_MAX:
            _IN_ORDER.clear()
        fits = len(args) == len(params) and all(a.name is None for a in args)
        got = _IN_ORDER[(id(args), id(params))] = (args, params, fits)
    return got[2]


#: Per layer kind (by id, with the kind to tell a reused id): its argument names and checked defaults.
_ARG_TABLES: dict[int, tuple[LayerKind, list[str], dict[str, Any]]] = {}


def _arg_table(kind: LayerKind) -> tuple[list[str], dict[str, Any]]:
    """A layer kind's argument names, and its optional arguments' defaults already checked."""
    got = _ARG_TABLES.get(id(kind))
    if got is None or got[0] is not kind:
        defaults = {a.name: a.default if a.default is None else a.check(a.default) for a in kind.args if not a.required}
        got = _ARG_TABLES[id(kind)] = (kind, [a.name for a in kind.args], defaults)
    return got[1], got[2]


#: Per layer statement (by id, with the statement and its kind): what _layer_args needs of it,
#: or None when its arguments do not fit the kind's signature. A fact of the parsed text and
#: the layer table, kept across checks like _ARG_NAMES (bounded likewise).
_ARG_PLANS: dict[int, tuple[ast.CallStmt, LayerKind, _ArgPlan | None]] = {}
#: (arguments given, by name in the order written; (name, checker) of each given one in the
#: kind's order; every argument of the kind in its order, the optional ones at their defaults).
_ArgPlan = tuple[dict[str, ast.Expr], list[tuple[str, Any]], dict[str, Any]]


def _arg_plan(kind: LayerKind, stmt: ast.CallStmt) -> _ArgPlan | None:
    """How a layer statement's arguments bind to its kind's; None if they do not fit."""
    got = _ARG_PLANS.get(id(stmt))
    if got is not None and got[0] is stmt and got[1] is kind:
        return got[2]
    if len(_ARG_PLANS) >= _ARG_NAMES_MAX:
        _ARG_PLANS.clear()
    names, defaults = _arg_table(kind)
    given: dict[str, ast.Expr] | None = {}
    for i, a in enumerate(stmt.args):
        name = a.name if a.name is not None else (names[i] if i < len(names) else None)
        if name is None or name not in names or name in given:  # type: ignore[operator]
            given = None
            break
        given[name] = a.value  # type: ignore[index]
    plan: _ArgPlan | None = None
    if given is not None and all(a.name in given or not a.required for a in kind.args):
        template = {a.name: defaults.get(a.name) for a in kind.args}
        plan = (given, [(a.name, a.check) for a in kind.args if a.name in given], template)
    _ARG_PLANS[id(stmt)] = (stmt, kind, plan)
    return plan


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _branch_name(stmt: ast.Stmt) -> str:
    """A join branch's name for messages: its label, or the name of a named group."""
    if stmt.label is not None:
        return stmt.label.text
    if isinstance(stmt, ast.GroupStmt) and stmt.name is not None:
        return stmt.name
    return ""


def _signature(name: str, params: list[ast.Param]) -> str:
    """A block's or network's signature for messages: `Bottleneck(planes, stride = …)`."""
    return f"{name}({', '.join(_param_text(p) for p in params)})"


def _param_text(p: ast.Param) -> str:
    return p.name if p.default is None else f"{p.name} = …"


def _same_type(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool)
    if isinstance(expected, (int, float)):
        return isinstance(value, (int, float)) and (isinstance(expected, float) or isinstance(value, int))
    return type(expected) is type(value)


@contextmanager
def deep_recursion(limit: int = 20_000) -> Iterator[None]:
    """Room for nested blocks and expressions; the Limits keep depth bounded well below this."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# ------------------------------------------------------------ static warnings


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    """The fields of an AST class that may hold AST nodes (not spans, labels or plain values)."""
    fields = _CHILD_FIELDS.get(cls)
    if fields is None:
        skip = {"span", "label", "name_span", "kind_span", "target_span"}
        fields = tuple(f for f in getattr(cls, "__dataclass_fields__", {}) if f not in skip)
        _CHILD_FIELDS[cls] = fields
    return fields


#: What a field holding AST nodes holds (a tuple: isinstance is much slower with a `|` union).
_AST_CHILD = (list, ast.Expr, ast.Stmt, ast.Arg, ast.Shortcut, ast.Param, ast.InitAssign)


def _names_used(node: Any, out: set[str]) -> set[str]:
    """Every name an AST subtree reads: variables, callees (a parameter may be called), and
    "in" where it reads the block input (a keyword, so no variable has that name)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(n)
            continue
        if isinstance(n, ast.Name):
            out.add(n.id)
            continue
        if isinstance(n, ast.BlockInput):
            out.add("in")
            continue
        if isinstance(n, ast.CallStmt):
            out.add(n.name)
        for f in _child_fields(type(n)):
            v = getattr(n, f)
            if isinstance(v, _AST_CHILD):
                stack.append(v)
    return out


def _unused_lets(body: list[ast.Stmt], out: list[_Finding]) -> None:
    """W004 for every `let` of a body (and the bodies inside it) that nothing after it reads."""
    # Only what follows a `let` can read it: statements up to the first one need no walk.
    first_let = next((i for i, stmt in enumerate(body) if isinstance(stmt, ast.LetStmt)), len(body))
    later: set[str] = set()
    for i in range(len(body) - 1, -1, -1):
        stmt = body[i]
        if isinstance(stmt, ast.LetStmt) and stmt.name not in later and not stmt.name.startswith("_"):
            out.append((
                "W004",
                f"`let {stmt.name}` is never used",
                stmt.span,
                "remove it, or start its name with `_` to keep it",
            ))
        if i > first_let:
            _names_used(stmt, later)
        for inner in _bodies(stmt):
            _unused_lets(inner, out)


def _bodies(stmt: ast.Stmt) -> list[list[ast.Stmt]]:
    """The statement lists nested directly in a statement."""
    if isinstance(stmt, ast.GroupStmt | ast.ForStmt | ast.AuxStmt):
        return [stmt.body]
    if isinstance(stmt, ast.ResidualStmt):
        return [stmt.body] + ([stmt.shortcut.body] if stmt.shortcut is not None else [])
    if isinstance(stmt, ast.IfStmt):
        return [stmt.then] + ([stmt.orelse] if stmt.orelse is not None else [])
    return []


#: A warning that needs no elaboration: code, message, span and help.
_Finding = tuple[str, str, Span, str]
#: static_warnings' findings per program, by the ids of its definitions (kept with them, so the
#: ids are not reused) and the names the main file defines. They are a fact of the parsed text,
#: which the parse cache keeps across checks: a family file's networks checked one by one, or
#: the same spec checked again, walk the definitions once. Bounded, for long runs.
_STATIC: dict[tuple[Any, ...], tuple[tuple[Any, ...], list[_Finding]]] = {}
_STATIC_MAX = 256


def static_warnings(program: Program, diags: Diagnostics) -> None:
    """Warnings that need no elaboration, for the main file's definitions.

    W001: a block nothing refers to. W002: a block or network parameter its
    body never reads (a leading `_` says that is intended). W004: a `let`
    nothing after it reads.
    """
    defs = (*program.blocks.values(), *program.networks.values())
    key = (*map(id, defs), *program.main_blocks, None, *program.main_networks)
    got = _STATIC.get(key)
    if got is None or any(a is not b for a, b in zip(got[0], defs, strict=True)):
        if len(_STATIC) >= _STATIC_MAX:
            _STATIC.clear()
        got = _STATIC[key] = (defs, _static_findings(program))
    for code, message, span, help in got[1]:
        diags.warning(code, message, span, help=[help])


def _static_findings(program: Program) -> list[_Finding]:
    """static_warnings' findings, computed."""
    out: list[_Finding] = []
    referenced: set[str] = set()
    # Only the main file's blocks can be reported unused: with none, nobody's references matter
    # (resnet152.cnn is one network alias over resnet.cnn's blocks).
    for item in [*program.blocks.values(), *program.networks.values()] if program.main_blocks else []:
        if isinstance(item, ast.NetworkAlias):
            referenced.add(item.target)
            _names_used(item.args, referenced)
        else:
            # A block's own body does not count: a block that only calls itself is unused too.
            inner = _names_used([item.body, [p.default for p in item.params if p.default is not None]], set())
            referenced |= inner - ({item.name} if isinstance(item, ast.BlockDef) else set())
    # A network parameter that takes a block (`unit = Bottleneck`) may be given any
    # block with --set, so in such a family file no block is unused.
    block_params = any(
        isinstance(p.default, ast.Name) and p.default.id in program.blocks
        for n in program.main_networks
        if isinstance(d := program.networks[n], ast.NetworkDef)
        for p in d.params
    )
    for name in [] if block_params else program.main_blocks:
        if name not in referenced:
            block = program.blocks[name]
            out.append(("W001", f"block `{name}` is never used", block.name_span, "remove it, or use it in a network"))
    defs = [program.blocks[n] for n in program.main_blocks if n in referenced]  # unused: W001 says enough
    defs += [d for n in program.main_networks if isinstance(d := program.networks[n], ast.NetworkDef)]
    for d in defs:
        used = _names_used(d.body, set())
        for i, p in enumerate(d.params):
            later = {n for q in d.params[i + 1 :] if q.default is not None for n in _names_used(q.default, set())}
            if p.name not in used and p.name not in later and not p.name.startswith("_"):
                what = "block" if isinstance(d, ast.BlockDef) else "network"
                out.append((
                    "W002",
                    f"parameter `{p.name}` of {what} `{d.name}` is never used",
                    p.span,
                    f"remove it, or rename it `_{p.name}` to keep it in the signature",
                ))
        _unused_lets(d.body, out)
    return out
