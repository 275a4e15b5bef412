"""AST of a .cnn file: plain nodes that each remember their span.

The transformer in cnnspec.syntax.parser builds these and nothing else; meaning is
given to them by cnnspec.semantics.elaborate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnspec.syntax.source import Span

#: Largest integer magnitude the language holds: an int literal, or any value an expression computes.
MAX_INT = 2**62

# ---------------------------------------------------------------- expressions


@dataclass(slots=True)
class Expr:
    """Base of every expression node."""

    span: Span


@dataclass(slots=True)
class Num(Expr):
    """An int or float literal."""

    value: int | float


@dataclass(slots=True)
class Str(Expr):
    """A string literal (escapes already resolved)."""

    value: str


@dataclass(slots=True)
class Bool(Expr):
    """`true` or `false`."""

    value: bool


@dataclass(slots=True)
class Name(Expr):
    """A reference to a parameter or loop variable."""

    id: str


@dataclass(slots=True)
class BlockInput(Expr):
    """`in`: the shape of the enclosing block's input."""


@dataclass(slots=True)
class Attribute(Expr):
    """`obj.name`, e.g. `in.channels`."""

    obj: Expr
    name: str


@dataclass(slots=True)
class Index(Expr):
    """`obj[index]`."""

    obj: Expr
    index: Expr


@dataclass(slots=True)
class Arg:
    """An argument of a call: positional when name is None."""

    name: str | None
    value: Expr
    span: Span


@dataclass(slots=True)
class FuncCall(Expr):
    """A call of a built-in pure function such as `max` or `divisible`."""

    func: str
    args: list[Arg]


@dataclass(slots=True)
class ListExpr(Expr):
    """`[a, b, c]`."""

    items: list[Expr]


@dataclass(slots=True)
class ListComp(Expr):
    """`[item for var in iter]`: item evaluated once per element of iter, with var bound to it."""

    item: Expr
    var: str
    iter: Expr


@dataclass(slots=True)
class Unary(Expr):
    """`-x` or `not x`."""

    op: str
    operand: Expr


@dataclass(slots=True)
class Binary(Expr):
    """Arithmetic, comparison and boolean operators."""

    op: str
    left: Expr
    right: Expr


@dataclass(slots=True)
class CondExpr(Expr):
    """`a if cond else b`."""

    cond: Expr
    then: Expr
    orelse: Expr


# ----------------------------------------------------------------- statements


@dataclass(slots=True)
class Label:
    """`name:` before a statement; a string label is a naming template.

    parts: a string label with expressions in braces (`"block{s}-{i}"`), as its
    literal text and those expressions in order; a `{N}` of digits (the
    repetition's first number) stays in the text. Empty for any other label.
    """

    text: str
    is_template: bool
    span: Span
    parts: list[str | Expr] = field(default_factory=list)


@dataclass(slots=True)
class Stmt:
    """Base of every statement; label is set for `label: statement`."""

    span: Span
    label: Label | None = field(default=None, kw_only=True)


@dataclass(slots=True)
class InputStmt(Stmt):
    """`input: 3 x 224 x 224`."""

    dims: list[Expr]


@dataclass(slots=True)
class InitAssign:
    """`weight = kaiming_normal(mode = "fan_out")` inside an init statement."""

    target: str
    scheme: str
    args: list[Arg]
    span: Span


@dataclass(slots=True)
class InitStmt(Stmt):
    """`init conv: weight = ..., bias = ...`: how a layer kind is initialised; with a pattern
    (`init batchnorm "layer*.*.bn3": ...`), only its layers whose module path matches."""

    kind: str
    kind_span: Span
    assigns: list[InitAssign]
    pattern: str | None = None
    pattern_span: Span | None = None


@dataclass(slots=True)
class CallStmt(Stmt):
    """A layer or block call, optionally repeated: `Bottleneck(64) * 3`."""

    name: str
    name_span: Span
    args: list[Arg]
    repeat: Expr | None


@dataclass(slots=True)
class GroupStmt(Stmt):
    """`name { ... }`: a named group, or a join when name is concat/add/mul.

    name is None for an anonymous group `{ ... }`; args is None unless written
    `name(args) { ... }` (a join's arguments: `concat(dim = -1) { ... }`).
    """

    name: str | None
    name_span: Span | None
    body: list[Stmt]
    args: list[Arg] | None = None


@dataclass(slots=True)
class Shortcut:
    """The projection of a residual, used only where identity cannot fit."""

    name: str | None
    body: list[Stmt]
    span: Span


@dataclass(slots=True)
class ResidualStmt(Stmt):
    """`residual { body } shortcut name { projection }`."""

    body: list[Stmt]
    shortcut: Shortcut | None


@dataclass(slots=True)
class IfStmt(Stmt):
    """`if cond { ... } else { ... }`."""

    cond: Expr
    then: list[Stmt]
    orelse: list[Stmt] | None


@dataclass(slots=True)
class ForStmt(Stmt):
    """`for v in list { ... }`."""

    var: str
    iter: Expr
    body: list[Stmt]


@dataclass(slots=True)
class LetStmt(Stmt):
    """`let name = expr`: a variable for the statements after it in the same body."""

    name: str
    value: Expr


@dataclass(slots=True)
class AuxStmt(Stmt):
    """`aux(weight = 0.3) { ... }`: a side branch whose result is an auxiliary output.

    The main path continues from the aux statement's input unchanged.
    """

    args: list[Arg]
    body: list[Stmt]


# ---------------------------------------------------------------------- items


@dataclass(slots=True)
class Param:
    """A block or network parameter with an optional default."""

    name: str
    default: Expr | None
    span: Span


@dataclass(slots=True)
class Import:
    """`import "resnet.cnn"`."""

    path: str
    span: Span


@dataclass(slots=True)
class BlockDef:
    """`block Name(params) { body }`."""

    name: str
    params: list[Param]
    body: list[Stmt]
    span: Span
    name_span: Span


@dataclass(slots=True)
class NetworkDef:
    """`network Name(params) { body }`."""

    name: str
    params: list[Param]
    body: list[Stmt]
    span: Span
    name_span: Span


@dataclass(slots=True)
class NetworkAlias:
    """`network resnet152 = ResNet(layers = [3, 8, 36, 3])`."""

    name: str
    target: str
    target_span: Span
    args: list[Arg]
    span: Span
    name_span: Span


Item = Import | BlockDef | NetworkDef | NetworkAlias


@dataclass(slots=True)
class Module:
    """One parsed .cnn file."""

    file: str
    items: list[Item]
