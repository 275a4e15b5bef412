"""The layer table: the built-in kinds (fixed) and the kinds users register, by name.

One LayerKind entry per layer holds all of its rules (cnnspec.layers.kind);
the built-in entries are in cnnspec.layers.builtin. Nothing here imports
torch at import time; torch is imported when a module is built.

The table is process-wide because `cnnspec.register_layer` is: a user
registers a layer once, at import time, and every spec may then call it, as
torch's own custom-op registry works. The built-in part never changes. User
registrations replace the whole table under a lock (copy on write), so a
reader never takes the lock and always sees one complete state of the table,
with the values derived from that state (per_table) cached beside it.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from cnnspec.layers.builtin import BUILTIN
from cnnspec.layers.kind import (
    LayerKind,
)

__all__ = ["all_kinds", "is_join", "join_kinds", "lookup", "per_table", "register", "suggest"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class _State:
    """One state of the table: every kind by name, and what per_table derived from it."""

    kinds: Mapping[str, LayerKind]
    derived: dict[Callable[[dict[str, LayerKind]], Any], Any] = field(default_factory=dict)


_BUILTIN_TABLE: Mapping[str, LayerKind] = MappingProxyType({k.name: k for k in BUILTIN})
_LOCK = threading.Lock()
#: The current state; only register() rebinds it, under _LOCK.
_state = _State(_BUILTIN_TABLE)


def register(kind: LayerKind, *, replace: bool = False) -> LayerKind:
    """Add a layer kind to the table (cnnspec.register_layer); replace=True overrides one of that name."""
    global _state
    with _LOCK:
        kinds = _state.kinds
        if kind.name in kinds and not replace:
            raise ValueError(f"layer kind {kind.name!r} is already registered")
        _state = _State(MappingProxyType({**kinds, kind.name: kind}))
    return kind


def per_table(fn: Callable[[dict[str, LayerKind]], _T]) -> Callable[[], _T]:
    """fn of the layer table (every kind by name), computed once for each state of the table."""

    def derived() -> _T:
        state = _state
        if fn not in state.derived:
            # Two threads may both compute it: the same value, and the dict keeps one.
            state.derived.setdefault(fn, fn(dict(state.kinds)))
        return state.derived[fn]  # type: ignore[no-any-return]

    return derived


def lookup(name: str) -> LayerKind | None:
    """The layer kind called name, or None."""
    return _state.kinds.get(name)


def all_kinds() -> dict[str, LayerKind]:
    """Every registered layer kind by name."""
    return dict(_state.kinds)


def is_join(name: str | None) -> bool:
    """Whether name is a layer kind that joins branches (arity "many"), written `name { ... }`."""
    kind = _state.kinds.get(name)
    return kind is not None and kind.is_join


def join_kinds() -> tuple[str, ...]:
    """The names of every join kind, in table order."""
    return tuple(name for name, kind in _state.kinds.items() if kind.is_join)


def suggest(name: str, candidates: Sequence[str]) -> str | None:
    """The closest candidate to a misspelt name, if one is close enough."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None
