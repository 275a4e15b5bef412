"""Elaboration: from a Program's AST to the IR graph of one network.

Blocks are instantiated with their arguments bound, repetitions and loops
unrolled, `if` decided, and every module given its path. Shapes are inferred
as nodes are created, through each layer kind's shape rule, because a block
may read its input's shape (`in.channels`) to decide what it builds.

Each statement kind has one visitor (STATEMENT_VISITORS); a visitor takes the
statement, the tensor flowing in and the Context, and gives the tensor flowing
out and the Context for the statements after it (only `let` changes it).

Errors do not stop elaboration: a statement that fails leaves an unknown
shape behind it, later statements skip the checks that need that shape, and
every independent problem is reported in one run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from cnnspec.diagnostics import Diagnostics, Frame, Note
from cnnspec.diagnostics.codes import (
    E101,
    E103,
    E104,
    E209,
    E212,
    E213,
    E214,
    E217,
    E218,
    E220,
    E221,
    E302,
    E405,
    E406,
    E407,
    E408,
    E409,
    E410,
    E411,
    E413,
    E601,
    E602,
    E603,
    W003,
    W005,
)
from cnnspec.ir import AuxOutput, CutMarker, Graph, InitRule, Node
from cnnspec.layers.builtin import CUT
from cnnspec.layers.kind import Attrs, LayerKind, ShapeError, shape_text
from cnnspec.layers.registry import all_kinds, is_join, lookup, suggest
from cnnspec.semantics.binder import Binder
from cnnspec.semantics.context import Context, Limits, Value
from cnnspec.semantics.inits import init_rules, unmatched_patterns
from cnnspec.semantics.scopes import Scope, template_names
from cnnspec.semantics.select import resolve_network, select_network
from cnnspec.semantics.values import LITERALS, UNKNOWN, Budget, EvalError, Ref, ShapeValue, evaluate, show, type_name
from cnnspec.syntax import ast
from cnnspec.syntax.loader import Program
from cnnspec.syntax.source import Span

__all__ = ["DEFAULT_LIMITS", "Elaborator", "Limits", "select_network"]

# Work units (values.Budget: a list item built costs 1), each in proportion to the time and
# memory the thing costs through the whole check, so that MAX_WORK bounds both for any spec.
#: A statement run: a visitor's frames and a Context, about 10 µs.
STATEMENT_WORK = 20
#: A layer or join node, plus 1 per input: the node's fields (about 2 KB) and the work of every
#: later stage on it (shapes, analysis passes, views), about 100 µs in all. At MAX_WORK a
#: network of at most 25,000 nodes is checked.
NODE_WORK = 200
#: A block instance: its arguments bound and the names it sees made (plus what binding costs).
BLOCK_WORK = 40
#: A group row (a block instance, a named group, a repetition): its row in the views.
GROUP_WORK = 40
#: Binding a variable copies the names in scope: one unit per BIND_NAMES names copied.
BIND_NAMES = 8
#: The limits an Elaborator uses when none are given.
DEFAULT_LIMITS = Limits()

#: A statement visitor: (elaborator, statement, tensor in, context) -> (tensor out, context after).
Visitor = Callable[["Elaborator", Any, Value, Context], tuple[Value, Context]]


def _group_args(env: Mapping[str, Any]) -> dict[str, Any]:
    """A block instance's arguments as its Group records them: those with a known, plain value."""
    return {k: v for k, v in env.items() if v is not UNKNOWN and not isinstance(v, ShapeValue)}


class Elaborator:
    """Builds the IR graph of one network, collecting diagnostics. One per elaboration."""

    def __init__(self, program: Program, diags: Diagnostics, limits: Limits | None = None) -> None:
        self.program = program
        self.diags = diags
        self.limits = limits or DEFAULT_LIMITS
        self.budget = Budget(self.limits.max_work)
        self.graph: Graph | None = None
        self.used_blocks: set[str] = set()
        self._too_big = False
        self._nesting = 0
        #: The nodes by id, until the graph is finished; a join's node is replaced by one with
        #: its path when its scope closes (its path depends on the labels after it).
        self._nodes: list[Node] = []
        # For W003 (shortcut never built).
        self._shortcuts_seen: dict[int, ast.Shortcut] = {}
        self._shortcuts_built: set[int] = set()
        #: The `init` statements with a module path pattern, with one of their rules (for W007).
        self._init_patterns: list[tuple[ast.InitStmt, InitRule]] = []
        # Block and layer names are values too (`unit = BasicBlock`); parameters shadow them.
        self._kinds = all_kinds()
        self.refs: dict[str, Ref] = {k: Ref(k, "layer") for k in self._kinds}
        self.refs.update({k: Ref(k, "block") for k in program.blocks})
        self.binder = Binder(diags, self.refs, self.budget)

    # ------------------------------------------------------------ network

    def network(
        self, name: str, overrides: Mapping[str, Any], input_shape: tuple[int, ...] | None = None
    ) -> Graph | None:
        """Elaborate a network with parameter overrides; None when it has errors."""
        resolved = resolve_network(self.program, name, self.binder, self._network_value)
        if resolved is None:
            return None
        definition, bound = resolved
        params = self.binder.network_params(name, definition, bound, overrides)
        if params is None:
            return None
        graph = self.graph = Graph(name, params)
        scope = Scope("")
        ctx = Context(env=params, names={**self.refs, **params}, scope=scope, block_input=None, top=True)
        body = list(definition.body)
        cur = self._input(body, ctx, input_shape, definition)
        if cur is None:
            return None
        ctx = ctx._replace(block_input=ShapeValue(cur.shape) if cur.shape else None)
        cur = self._body(body, cur, ctx)
        self._close(scope)
        for node in self._nodes:
            graph.add(node)
        graph.output = cur.node
        if not self.diags.has_errors:
            self._shortcut_warnings()
            if self._init_patterns:
                unmatched_patterns(self._init_patterns, graph.layers(), self.diags)
        return graph

    def _network_value(self, e: ast.Expr) -> Any:
        """A network alias's argument: block and layer names in scope, no `in`."""
        return self._value(e, self.refs, None, ())

    def _input(
        self, body: list[ast.Stmt], ctx: Context, override: tuple[int, ...] | None, definition: ast.NetworkDef
    ) -> Value | None:
        stmt = body.pop(0) if body and isinstance(body[0], ast.InputStmt) else None
        shape: tuple[int, ...] | None = None
        if stmt is not None:
            dims = []
            for d in stmt.dims:
                v = self._eval(d, ctx)
                if v is UNKNOWN:
                    return None
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    self.diags.error(E212, f"an input dimension must be a positive int, got {show(v)}", d.span)
                    return None
                dims.append(v)
            if len(dims) not in (1, 2, 3):
                self.diags.error(
                    E213,
                    f"the input must be C x H x W, N x D tokens or a flat size, got {len(dims)} dimensions",
                    stmt.span,
                )
                return None
            shape = tuple(dims)
        if override is not None:
            shape = override
        if shape is None:
            self.diags.error(
                E214,
                f"network `{definition.name}` does not say its input shape",
                definition.name_span,
                help=["start its body with `input: 3 x 224 x 224`, or pass --input 3x224x224"],
            )
            return None
        span = stmt.span if stmt is not None else definition.name_span
        self._nodes.append(Node(id=0, kind="input", path="x", has_module=False, attrs={}, out_shape=shape, span=span))
        return Value(0, shape)

    # ---------------------------------------------------------- statements

    def _body(self, stmts: list[ast.Stmt], cur: Value, ctx: Context) -> Value:
        """A statement list, in order: each statement's tensor flows into the next."""
        for stmt in stmts:
            if self._too_big:
                return Value(cur.node, None)
            # A statement costs far more than a list item: weigh it so that
            # MAX_WORK bounds loops that build nothing to seconds, not minutes.
            if not self._spend(STATEMENT_WORK, stmt.span, ctx):
                return Value(cur.node, None)
            cur, ctx = self._visit(stmt, cur, ctx)
        return cur

    def _spend(self, n: int, span: Span, ctx: Context) -> bool:
        """Charge n units to the check's budget; past it, report E608 once, stop, and give False."""
        if self._too_big:
            return False
        try:
            self.budget.charge(n, span)
        except EvalError as e:
            self.binder.eval_error(e, ctx.trace)
            self._too_big = True
            return False
        return True

    def _visit(self, stmt: ast.Stmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        """One statement, through its visitor; statements nest at most Limits.max_nesting deep."""
        if self._too_big:
            return Value(cur.node, None), ctx
        if self._nesting >= self.limits.max_nesting:
            self.diags.error(
                E603,
                f"blocks and groups are nested more than {self.limits.max_nesting} deep",
                stmt.span,
                trace=ctx.trace,
            )
            self._too_big = True
            return Value(cur.node, None), ctx
        if stmt.label is not None and stmt.label.parts:
            named = self._named(stmt, ctx)
            if named is None:
                return Value(cur.node, None), ctx
            stmt = named
        self._nesting += 1
        try:
            return STATEMENT_VISITORS[type(stmt)](self, stmt, cur, ctx)
        finally:
            self._nesting -= 1

    def _named(self, stmt: ast.Stmt, ctx: Context) -> ast.Stmt | None:
        """stmt with its label's expressions (`"block{s}-{i}"`) evaluated here: a copy, since the
        same statement names other modules in other iterations; None (reported) if one fails."""
        assert stmt.label is not None
        text = []
        for part in stmt.label.parts:
            if isinstance(part, str):
                text.append(part)
                continue
            value = self._eval(part, ctx)
            if value is UNKNOWN:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                self.diags.error(
                    E218,
                    f"a naming template's braces give {show(value)}; a name is made of ints and strings",
                    part.span,
                    trace=ctx.trace,
                )
                return None
            text.append(str(value))
        return replace(stmt, label=ast.Label("".join(text), True, stmt.label.span))

    def _let(self, stmt: ast.LetStmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        """`let name = expr`: the name bound for the rest of the body."""
        value = self._eval(stmt.value, ctx)
        if not self._spend(self._bind_work(ctx), stmt.span, ctx):
            return cur, ctx
        return cur, self._bind(ctx, stmt.name, value)

    def _init_stmt(self, stmt: ast.InitStmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        if not ctx.top:
            self.diags.error(
                E406,
                "`init` belongs at the top level of a network",
                stmt.span,
                help=[
                    "move it to the network's top level, or into an `if` there; "
                    'to reach only some layers, add a path pattern: `init conv "layer1.*.conv1": ...`'
                ],
            )
            return cur, ctx
        assert self.graph is not None
        rules = init_rules(stmt, lambda e: self._eval(e, ctx), self.diags)
        self.graph.init_rules.extend(rules)
        if stmt.pattern is not None and rules:
            self._init_patterns.append((stmt, rules[-1]))  # its rules select alike: one will do
        return cur, ctx

    def _input_stmt(self, stmt: ast.InputStmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        self.diags.error(
            E407,
            "`input` may only open a network's body",
            stmt.span,
            help=["a block takes its input from the statement before it"],
        )
        return cur, ctx

    def _close(self, scope: Scope) -> None:
        """Name the scope's joins, now that every label in it is known."""
        for node_id, path in scope.join_names().items():
            self._nodes[node_id] = self._nodes[node_id]._replace(path=path)
        scope.joins.clear()

    # ------------------------------------------------------------- calls

    def _call_stmt(self, stmt: ast.CallStmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        bound = ctx.env.get(stmt.name)
        name = bound.name if isinstance(bound, Ref) else stmt.name
        kind = self._kinds.get(name)
        block = self.program.blocks.get(name) if kind is None else None  # a layer kind wins
        if kind is None and block is None:
            self._unknown_callee(stmt)
            for a in stmt.args:  # still report errors inside the arguments
                self._eval(a.value, ctx)
            return Value(cur.node, None), ctx
        if kind is not None and kind.is_join:
            self.diags.error(
                E103,
                f"`{kind.name}` joins branches and takes a body",
                stmt.span,
                help=[f"write `{kind.name} {{ branch1; branch2 }}`"],
            )
            return Value(cur.node, None), ctx
        if kind is CUT:
            return self._cut(stmt, cur, ctx), ctx
        if stmt.repeat is None:
            path = ctx.scope.name(stmt.label, stmt.span, self.diags)
            return self._emit(kind, block, stmt, cur, ctx, path), ctx
        return self._repeat(kind, block, stmt, cur, ctx), ctx

    def _cut(self, stmt: ast.CallStmt, cur: Value, ctx: Context) -> Value:
        """`cut`: a pipeline boundary after the current value, recorded on the graph. It takes no
        position and adds no node, so every module path and figure is that of the spec without it."""
        self.binder.layer(CUT, stmt.args, stmt.span, lambda e: self._eval(e, ctx), ctx.trace)
        copies = 1
        if stmt.repeat is not None:
            count = self._eval(stmt.repeat, ctx)
            copies = count if type(count) is int and count >= 0 else 1
        if cur.shape is not None:
            # Two markers in one place are already an error for the planner; more add nothing.
            for _ in range(min(copies, 2)):
                self.graph.cut_markers.append(CutMarker(cur.node, stmt.span, ctx.trace))
        return cur

    def _emit(
        self, kind: LayerKind | None, block: ast.BlockDef | None, stmt: ast.CallStmt, cur: Value, ctx: Context,
        path: str,
    ) -> Value:
        """One call of a layer or block."""
        if kind is not None:
            return self._layer(kind, stmt, cur, ctx, path)
        assert block is not None
        return self._block(block, stmt, cur, ctx, path)

    def _repeat(
        self, kind: LayerKind | None, block: ast.BlockDef | None, stmt: ast.CallStmt, cur: Value, ctx: Context
    ) -> Value:
        """`call * n`: n copies, each reading the one before it."""
        assert stmt.repeat is not None
        count = self._eval(stmt.repeat, ctx)
        if count is UNKNOWN:
            return Value(cur.node, None)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.diags.error(
                E217, f"a repetition count must be an int of at least 0, got {show(count)}", stmt.repeat.span
            )
            return Value(cur.node, None)
        if count > self.limits.max_repeat:
            self.diags.error(
                E601,
                f"repeating {count:,} times exceeds the limit of {self.limits.max_repeat:,}",
                stmt.repeat.span,
                trace=ctx.trace,
            )
            return Value(cur.node, None)
        label = stmt.label
        labels: list[ast.Label | None] = [None] * count
        if label is not None and label.is_template:
            names = template_names(label, count, self.diags)
            if names is None:
                return Value(cur.node, None)
            labels = [ast.Label(n, is_template=False, span=label.span) for n in names]
        elif label is not None:
            path = ctx.scope.name(label, stmt.span, self.diags)
            self._group_info(path, "repeat", stmt.name, stmt.span)
            ctx = ctx._replace(scope=Scope(path))
        before, work_before = len(self._nodes), self.budget.spent
        for i in range(count):
            # A copy that makes no node (an empty block) still costs its call.
            if not self._spend(STATEMENT_WORK, stmt.span, ctx):
                break
            path = ctx.scope.name(labels[i], stmt.span, self.diags)
            cur = self._emit(kind, block, stmt, cur, ctx, path)
            if self._too_big or (
                i == 0
                and (
                    self._overflows(before, count - 1, stmt.span, ctx)
                    or self._overspends(work_before, count - 1, stmt.span, ctx)
                )
            ):
                break
        if label is not None and not label.is_template:
            self._close(ctx.scope)
        return cur

    def _unknown_callee(self, stmt: ast.CallStmt) -> None:
        names = list(self._kinds) + list(self.program.blocks)
        hint = suggest(stmt.name, names)
        helps = [f"did you mean `{hint}`?"] if hint else []
        if stmt.name in self.program.networks:
            helps = ["a network cannot be used as a layer; define the shared part as a `block`"]
        helps.append("see `cnnspec layers` for the built-in layers")
        self.diags.error(E101, f"unknown layer or block `{stmt.name}`", stmt.name_span, help=helps)

    def _layer(self, kind: LayerKind, stmt: ast.CallStmt, cur: Value, ctx: Context, path: str) -> Value:
        attrs = self.binder.layer(kind, stmt.args, stmt.span, lambda e: self._eval(e, ctx), ctx.trace)
        out: tuple[int, ...] | None = None
        if attrs is not None and cur.shape is not None:
            try:
                out = kind.shape(attrs, cur.shape)
                if kind.args_from_input is not None:
                    attrs = Attrs({**attrs, **kind.args_from_input(attrs, cur.shape, out)})
            except ShapeError as e:
                self.diags.error(
                    e.code, str(e), stmt.span, notes=[Note(n) for n in e.notes], help=[e.help] if e.help else [],
                    trace=ctx.trace,
                )
        return self._node(
            kind.name, path, kind.module is not None, (cur.node,), (cur.shape,), attrs or Attrs(), out, stmt.span, ctx
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
        ctx: Context,
        skip: tuple[int, ...] = (),
    ) -> Value:
        """Add a node; its shapes are left empty when any is unknown (elaboration has errors then)."""
        if len(self._nodes) >= self.limits.max_nodes:
            if not self._too_big:
                self.diags.error(
                    E602,
                    f"the network has more than {self.limits.max_nodes:,} layers",
                    span,
                    help=["check the repetition counts"],
                )
            self._too_big = True
            return Value(ids[0], None)
        if not self._spend(NODE_WORK + len(ids), span, ctx):
            return Value(ids[0], None)
        known = out is not None and None not in in_shapes
        nid = len(self._nodes)
        self._nodes.append(Node(
            id=nid,
            kind=kind,
            path=path,
            has_module=has_module,
            inputs=ids,
            attrs=attrs,
            in_shapes=in_shapes if known else (),
            out_shape=out if known else (),
            span=span,
            trace=ctx.trace,
            scope=ctx.scope.path,
            skip=skip,
        ))
        return Value(nid, out if known else None)

    def _block(self, block: ast.BlockDef, stmt: ast.CallStmt, cur: Value, ctx: Context, path: str) -> Value:
        self.used_blocks.add(block.name)
        if block.name in ctx.blocks:
            cycle = " -> ".join(ctx.blocks[ctx.blocks.index(block.name) :] + (block.name,))
            self.diags.error(
                E405,
                f"block `{block.name}` instantiates itself: {cycle}",
                stmt.name_span,
                notes=[Note(f"`{block.name}` is defined here", block.name_span)],
                help=["blocks cannot be recursive; repeat with `*` instead"],
            )
            return Value(cur.node, None)
        if len(ctx.blocks) >= self.limits.max_depth:
            self.diags.error(
                E603, f"blocks are nested more than {self.limits.max_depth} deep", stmt.name_span, trace=ctx.trace
            )
            return Value(cur.node, None)
        # A block's arguments see their caller's `in` (None at the network's level: an error to read).
        env = self.binder.params(
            "block", block.name, block.params, stmt.args, stmt.span,
            lambda e: self._value(e, ctx.names, ctx.block_input, ctx.trace), ctx.trace,
        )
        if env is None or not self._spend(BLOCK_WORK + (len(env) + len(self.refs)) // BIND_NAMES, stmt.span, ctx):
            return Value(cur.node, None)
        self._group_info(path, "block", block.name, stmt.span, _group_args(env))
        inner = Context(
            env=env,
            names={**self.refs, **env},
            scope=Scope(path),
            # With an unknown input, still walk the body for errors that do not depend on shapes.
            block_input=ShapeValue(cur.shape) if cur.shape is not None else None,
            trace=(*ctx.trace, Frame(block.name, path, stmt.span)),
            blocks=(*ctx.blocks, block.name),
        )
        out = self._body(block.body, cur, inner)
        self._close(inner.scope)
        return out

    # ------------------------------------------------- groups, joins, residual

    def _group_info(self, path: str, kind: str, name: str, span: Span, args: dict[str, Any] | None = None) -> None:
        """Record a group; args: a block instance's plain arguments (_group_args)."""
        assert self.graph is not None
        # Charged unchecked: the statement or block instance that opens the group checks next.
        self.budget.spent += GROUP_WORK
        self.graph.group_rows.append((path, kind, name, span, {} if args is None else args))

    def _scoped(self, stmt: ast.Stmt, ctx: Context, name: str | None, kind: str, what: str) -> Context:
        """A new module scope when the statement is named; otherwise the same scope."""
        label = stmt.label
        if name is not None and label is not None:
            self.diags.error(
                E408, f"the group `{name}` already has a name; drop the label `{label.text}:`", label.span
            )
        if name is None and label is None:
            return ctx
        lab = label if label is not None else ast.Label(name or "", False, stmt.span)
        path = ctx.scope.name(lab, stmt.span, self.diags)
        self._group_info(path, kind, what, stmt.span)
        return ctx._replace(scope=Scope(path))

    def _closed(self, inner: Context, outer: Context) -> None:
        """Close the scope a labelled statement opened (an unlabelled one shares its enclosing scope)."""
        if inner.scope is not outer.scope:
            self._close(inner.scope)

    def _braced(self, stmt: ast.GroupStmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        """`name { ... }`: a join when name is a join kind, else a group."""
        if is_join(stmt.name):
            return self._join(stmt, cur, ctx), ctx
        if stmt.name is not None and (lookup(stmt.name) is not None or stmt.name in self.program.blocks):
            self.diags.error(
                E104,
                f"`{stmt.name}` is a layer or block, not a group name",
                stmt.name_span,
                help=[f"to name a group, write `name: {{ ... }}`; to call `{stmt.name}`, use `{stmt.name}(...)`"],
            )
            return Value(cur.node, None), ctx
        if stmt.args:
            self.diags.error(
                E104,
                f"group `{stmt.name}` takes no arguments: only a join (`concat(dim = -1) {{ ... }}`) does",
                stmt.args[0].span,
                help=["to name a group, write `name: { ... }`; to call a block, write `Block(...)` without braces"],
            )
            return Value(cur.node, None), ctx
        inner = self._scoped(stmt, ctx, stmt.name, "group", stmt.name or (stmt.label.text if stmt.label else ""))
        out = self._body(stmt.body, cur, inner._replace(top=False))
        self._closed(inner, ctx)
        return out, ctx

    def _join(self, stmt: ast.GroupStmt, cur: Value, ctx: Context) -> Value:
        assert stmt.name is not None
        kind = lookup(stmt.name)
        assert kind is not None
        if len(stmt.body) < 2:
            self.diags.error(
                E410,
                f"`{stmt.name}` needs at least two branches, got {len(stmt.body)}",
                stmt.span,
                help=["each statement in the braces is one branch; group a branch's layers with `{ ... }`"],
            )
            return Value(cur.node, None)
        attrs = self.binder.layer(kind, stmt.args or [], stmt.span, lambda e: self._eval(e, ctx), ctx.trace)
        inner = self._scoped(stmt, ctx, None, "join", stmt.name)._replace(top=False)
        entry = inner.scope.reserve_join(kind.name)  # named in the order written: before the joins in its branches
        ins: list[Value] | None = [cur] * len(stmt.body)
        if kind.branch_input is not None and attrs is not None:
            ins = self._branch_inputs(kind, attrs, stmt, cur, inner)
        if ins is None:  # reported
            self._closed(inner, ctx)
            return Value(cur.node, None)
        outs = [self._branch(branch, x, inner) for branch, x in zip(stmt.body, ins, strict=True)]
        if attrs is None:  # the arguments were reported; the branches were still checked
            self._closed(inner, ctx)
            return Value(cur.node, None)
        names = [_branch_name(b) for b in stmt.body]
        out = self._join_node(kind, outs, stmt.span, inner, (), [b.span for b in stmt.body], names, entry, attrs=attrs)
        self._closed(inner, ctx)
        return out

    def _branch_inputs(
        self, kind: LayerKind, attrs: Attrs, stmt: ast.GroupStmt, cur: Value, ctx: Context
    ) -> list[Value] | None:
        """Each branch's own part of cur (split's chunks), one node per branch; None after an error."""
        part = lookup(kind.branch_input or "")
        assert part is not None
        chunks = attrs["chunks"]
        n = chunks if isinstance(chunks, int) else len(chunks)
        if n != len(stmt.body):
            self.diags.error(
                E413,
                f"`{kind.name}` cuts its input into {n} chunks but has {len(stmt.body)} branches",
                stmt.span,
                help=["one branch per chunk: branch i takes chunk i (`identity` passes a chunk on as it is)"],
                trace=ctx.trace,
            )
            return None
        values = []
        for i in range(n):
            a = Attrs({arg.name: i if arg.name == "index" else attrs[arg.name] for arg in part.args})
            out: tuple[int, ...] | None = None
            if cur.shape is not None:
                try:
                    out = part.shape(a, cur.shape)
                except ShapeError as e:
                    self.diags.error(
                        e.code,
                        f"{kind.name}: {str(e).removeprefix(part.name + ': ')}",
                        stmt.span,
                        help=[e.help] if e.help else [],
                        trace=ctx.trace,
                    )
                    return None
            path = ctx.scope.name(None, stmt.span, self.diags)
            values.append(
                self._node(part.name, path, part.module is not None, (cur.node,), (cur.shape,), a, out, stmt.span, ctx)
            )
        return values

    def _branch(self, stmt: ast.Stmt, cur: Value, ctx: Context) -> Value:
        """One branch of a join: a statement that gives a tensor (a `let` gives none: E409)."""
        if isinstance(stmt, ast.LetStmt) and not self._too_big:
            self.diags.error(
                E409,
                "`let` cannot be a branch of a join",
                stmt.span,
                help=["put the `let` before the join, or inside a branch's `{ ... }`"],
            )
            return cur
        return self._visit(stmt, cur, ctx)[0]

    def _join_node(
        self,
        kind: LayerKind,
        outs: list[Value],
        span: Span,
        ctx: Context,
        skip: tuple[int, ...],
        branch_spans: list[Span] | None = None,
        branch_names: list[str] | None = None,
        entry: list[Any] | None = None,
        residual: bool = False,
        attrs: Attrs | None = None,
    ) -> Value:
        shape: tuple[int, ...] | None = None
        if all(o.shape is not None for o in outs):
            names = [n or f"branch {i + 1}" for i, n in enumerate(branch_names or [""] * len(outs))]
            try:
                shape = kind.shape(Attrs(attrs or {}, branches=names), tuple(o.shape for o in outs))  # type: ignore[misc]
            except ShapeError as e:
                notes = [
                    Note(f"{n} gives {shape_text(o.shape)}", s)
                    for n, o, s in zip(names, outs, branch_spans or [], strict=False)
                    if o.shape
                ]
                self.diags.error(e.code, str(e), span, notes=notes, help=[e.help] if e.help else [], trace=ctx.trace)
        n_nodes = len(self._nodes)
        # The path is provisional: the scope names its joins when it closes (_close).
        out = self._node(
            kind.name,
            ctx.scope.child(kind.name),
            False,
            tuple(o.node for o in outs),
            tuple(o.shape for o in outs),
            Attrs(attrs or {}, residual=residual),
            shape,
            span,
            ctx,
            skip=skip,
        )
        if entry is not None and len(self._nodes) > n_nodes:
            entry[1] = out.node
        return out

    def _residual(self, stmt: ast.ResidualStmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        inner = self._scoped(stmt, ctx, None, "residual", "residual")._replace(top=False)
        out = self._residual_join(stmt, cur, inner)
        self._closed(inner, ctx)
        return out, ctx

    def _residual_join(self, stmt: ast.ResidualStmt, cur: Value, ctx: Context) -> Value:
        entry = ctx.scope.reserve_join("add")  # named in the order written: before the joins in its body
        body = self._body(stmt.body, cur, ctx)
        add = lookup("add")
        assert add is not None
        if body.shape is None or cur.shape is None:
            return Value(body.node, None)
        if body.shape == cur.shape:
            if stmt.shortcut is not None:
                self._shortcuts_seen[id(stmt.shortcut)] = stmt.shortcut
            return self._join_node(add, [body, cur], stmt.span, ctx, (1,), entry=entry, residual=True)
        sc = stmt.shortcut
        if sc is None:
            self.diags.error(
                E302,
                f"residual: body gives {shape_text(body.shape)}, input is {shape_text(cur.shape)}, "
                "and there is no shortcut",
                stmt.span,
                help=[
                    "add a projection used where identity cannot fit: "
                    f"`}} shortcut downsample {{ conv({body.shape[0]}, 1, stride = ...); batchnorm }}`"
                ],
                trace=ctx.trace,
            )
            return Value(body.node, None)
        self._shortcuts_built.add(id(sc))
        proj = self._shortcut(sc, cur, ctx)
        if proj.shape is None:
            return Value(body.node, None)
        if proj.shape != body.shape:
            self.diags.error(
                E302,
                f"residual: the body gives {shape_text(body.shape)} but the shortcut gives {shape_text(proj.shape)}",
                sc.span,
                notes=[Note(f"the input is {shape_text(cur.shape)}")],
                help=["make the shortcut's output match the body's: the same channels and stride"],
                trace=ctx.trace,
            )
            return Value(body.node, None)
        return self._join_node(add, [body, proj], stmt.span, ctx, (1,), entry=entry, residual=True)

    def _shortcut(self, sc: ast.Shortcut, cur: Value, ctx: Context) -> Value:
        """A residual's projection, in a group of its own when named."""
        sc_ctx = ctx
        if sc.name is not None:
            path = ctx.scope.name(ast.Label(sc.name, False, sc.span), sc.span, self.diags)
            self._group_info(path, "group", sc.name, sc.span)
            sc_ctx = ctx._replace(scope=Scope(path))
        proj = self._body(sc.body, cur, sc_ctx)
        self._closed(sc_ctx, ctx)
        return proj

    def _aux(self, stmt: ast.AuxStmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        assert self.graph is not None
        weight: Any = 1.0
        for a in stmt.args:
            if a.name not in (None, "weight"):
                hint = ["did you mean `weight`?"] if suggest(a.name or "", ["weight"]) else []
                self.diags.error(
                    E209, f"`aux` has no argument `{a.name}`", a.span, help=[*hint, "signature: aux(weight = 1.0)"]
                )
                continue
            weight = self._eval(a.value, ctx)
        if weight is not UNKNOWN and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0):
            self.diags.error(E212, f"an aux weight must be a number of at least 0, got {show(weight)}", stmt.span)
            weight = UNKNOWN
        inner = self._scoped(stmt, ctx, None, "aux", "aux")._replace(top=False)
        out = self._body(stmt.body, cur, inner)
        self._closed(inner, ctx)
        if out.node == cur.node and out.shape is not None:
            self.diags.error(E411, "`aux` needs at least one layer", stmt.span, trace=ctx.trace)
        elif weight is not UNKNOWN:
            if weight == 0:
                self.diags.warning(
                    W005,
                    "this auxiliary head has weight 0: its output is computed and ignored by the loss",
                    stmt.span,
                    help=["give it a positive weight, or remove the `aux` head"],
                    trace=ctx.trace,
                )
            name = stmt.label.text if stmt.label is not None else f"aux{len(self.graph.aux) + 1}"
            self.graph.aux.append(AuxOutput(name=name, node=out.node, weight=float(weight), span=stmt.span))
        return cur, ctx

    # ---------------------------------------------------------- control flow

    def _if(self, stmt: ast.IfStmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        """`if` decided; at a network's top level its branches are too (`init` may stand in them)."""
        cond = self._eval(stmt.cond, ctx)
        if cond is UNKNOWN:
            return Value(cur.node, None), ctx
        if not isinstance(cond, bool):
            self.diags.error(
                E220, f"`if` needs true or false, got a {type_name(cond)} ({show(cond)})", stmt.cond.span
            )
            return Value(cur.node, None), ctx
        inner = self._scoped(stmt, ctx, None, "group", "if")
        if cond:
            return self._body(stmt.then, cur, inner), ctx
        if stmt.orelse is not None:
            return self._body(stmt.orelse, cur, inner), ctx
        return cur, ctx

    def _for(self, stmt: ast.ForStmt, cur: Value, ctx: Context) -> tuple[Value, Context]:
        items = self._eval(stmt.iter, ctx)
        if items is UNKNOWN:
            return Value(cur.node, None), ctx
        if not isinstance(items, list):
            self.diags.error(
                E221,
                f"`for` needs a list, got a {type_name(items)}",
                stmt.iter.span,
                help=["use range(n) to repeat n times"],
            )
            return Value(cur.node, None), ctx
        inner = self._scoped(stmt, ctx, None, "group", "for")._replace(top=False)
        before = len(self._nodes)
        for i, item in enumerate(items):
            if not self._spend(STATEMENT_WORK + self._bind_work(inner), stmt.span, ctx):
                break
            cur = self._body(stmt.body, cur, self._bind(inner, stmt.var, item))
            if self._too_big or (i == 0 and self._overflows(before, len(items) - 1, stmt.span, ctx)):
                break
        return cur, ctx

    def _overspends(self, work_before: int, copies_left: int, span: Span, ctx: Context) -> bool:
        """After the first copy of a repetition: E608 now if the rest would pass the work budget.

        Copies of one call cost alike, so `block * 1000000` fails at once instead of after
        the seconds it takes to spend the budget.
        """
        per_copy = self.budget.spent - work_before
        if per_copy * copies_left <= self.budget.left:
            return False
        why = f"{copies_left + 1:,} copies of {per_copy:,} steps would take {per_copy * (copies_left + 1):,}"
        self.binder.eval_error(self.budget.exceeded(span, why), ctx.trace)
        self._too_big = True
        return True

    def _overflows(self, before: int, copies_left: int, span: Span, ctx: Context) -> bool:
        """After the first copy of a repetition: E602 now if the rest would pass max_nodes.

        Copies usually have the size of the first, so a million-fold repetition
        fails at once instead of after building a million layers.
        """
        per_copy = len(self._nodes) - before
        total = len(self._nodes) + per_copy * copies_left
        if per_copy == 0 or total <= self.limits.max_nodes:
            return False
        self.diags.error(
            E602,
            f"the network has more than {self.limits.max_nodes:,} layers: {copies_left + 1:,} copies of "
            f"{per_copy:,} layer{'s' if per_copy != 1 else ''} would make {total:,}",
            span,
            help=["check the repetition counts"],
            trace=ctx.trace,
        )
        self._too_big = True
        return True

    # --------------------------------------------------------------- helpers

    def _shortcut_warnings(self) -> None:
        for key, sc in self._shortcuts_seen.items():
            if key not in self._shortcuts_built:
                self.diags.warning(
                    W003,
                    "this shortcut is never built: in every instance the body keeps the input's shape, "
                    "so the identity is used",
                    sc.span,
                    help=["remove the shortcut, or check the body's channels and stride"],
                )

    def _eval(self, e: ast.Expr, ctx: Context) -> Any:
        """The value of an expression in a statement's context; UNKNOWN, reported, when it has none."""
        return self._value(e, ctx.names, ctx.block_input if ctx.block_input is not None else UNKNOWN, ctx.trace)

    @staticmethod
    def _bind_work(ctx: Context) -> int:
        """What _bind costs: it copies the variables and the names in scope (many `let`s
        in one body copy ever longer scopes)."""
        return (len(ctx.env) + len(ctx.names)) // BIND_NAMES

    def _bind(self, ctx: Context, name: str, value: Any) -> Context:
        """ctx with a variable bound (a `let`, a loop's variable)."""
        env = {**ctx.env, name: value}
        return ctx._replace(env=env, names={**ctx.names, name: value})

    def _value(self, e: ast.Expr, names: Mapping[str, Any], block_input: Any, trace: tuple[Frame, ...]) -> Any:
        """The value of e naming names, `in` being block_input (None: an error to use it);
        UNKNOWN, reported with trace, when it has none."""
        # Literals and variables (most arguments) need no combined scope.
        t = type(e)
        if t in LITERALS:
            return e.value  # type: ignore[attr-defined]
        if t is ast.Name and e.id in names:  # type: ignore[attr-defined]
            return names[e.id]  # type: ignore[attr-defined]
        try:
            return evaluate(e, names, block_input, self.budget)
        except EvalError as err:
            self.binder.eval_error(err, trace)
            return UNKNOWN


#: The visitor of each statement kind: the one place a statement's meaning is decided.
STATEMENT_VISITORS: dict[type, Visitor] = {
    ast.CallStmt: Elaborator._call_stmt,
    ast.GroupStmt: Elaborator._braced,
    ast.ResidualStmt: Elaborator._residual,
    ast.IfStmt: Elaborator._if,
    ast.ForStmt: Elaborator._for,
    ast.InitStmt: Elaborator._init_stmt,
    ast.AuxStmt: Elaborator._aux,
    ast.LetStmt: Elaborator._let,
    ast.InputStmt: Elaborator._input_stmt,
}


def _branch_name(stmt: ast.Stmt) -> str:
    """A join branch's name for messages: its label, or the name of a named group."""
    if stmt.label is not None:
        return stmt.label.text
    if isinstance(stmt, ast.GroupStmt) and stmt.name is not None:
        return stmt.name
    return ""
