"""What elaboration passes down: the limits of one check and the context a statement sees.

Like Jinja's Frame, a Context is made anew for each body that opens a scope
(a block instance, a named group, a loop iteration, a `let`) and never changed;
nothing here is shared between checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from cnnspec.diagnostics import Frame
from cnnspec.semantics.scopes import Scope
from cnnspec.semantics.values import MAX_WORK, ShapeValue


@dataclass(frozen=True)
class Limits:
    """Bounds that keep any spec from exhausting the machine."""

    #: Block instances nested in one another.
    max_depth: int = 64
    #: Statements nested in one another (blocks, groups, joins, loops together). A level takes
    #: at most five Python frames and an expression at most 400 (the parser bounds its nesting
    #: to 200), so with this bound no spec comes within 150 frames of Python's default
    #: recursion limit of 1000 (tests/test_elaborate.py checks the deepest case).
    max_nesting: int = 80
    max_nodes: int = 1_000_000
    max_repeat: int = 1_000_000
    #: Statements run plus list items built (values.MAX_WORK).
    max_work: int = MAX_WORK


class Value(NamedTuple):
    """The tensor flowing between statements: its producing node and shape (None if unknown)."""

    node: int
    shape: tuple[int, ...] | None


class Context(NamedTuple):
    """What a statement sees: variables, the module scope, `in`, the block chain."""

    env: Mapping[str, Any]
    #: What an expression can name: env's variables over the block and layer names.
    names: Mapping[str, Any]
    scope: Scope
    block_input: ShapeValue | None
    trace: tuple[Frame, ...] = ()
    blocks: tuple[str, ...] = ()
    #: At a network's top level (or an `if` there), where `init` may stand.
    top: bool = False
