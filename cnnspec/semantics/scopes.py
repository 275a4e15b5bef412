"""Module scopes and naming: positions, labels, `{N}` label templates and join names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnspec.diagnostics import Diagnostics, Note
from cnnspec.diagnostics.codes import E218, E404
from cnnspec.syntax import ast
from cnnspec.syntax.source import Span


@dataclass
class Scope:
    """A module namespace: a block instance, a named group or the network."""

    path: str
    counter: int = 0
    names: dict[str, Span] = field(default_factory=dict)
    #: The joins of this scope in the order written: [kind, node id once built]. Named when it closes.
    joins: list[list[Any]] = field(default_factory=list)

    def child(self, name: str) -> str:
        """The path of a module named `name` in this scope."""
        return f"{self.path}.{name}" if self.path else name

    def reserve_join(self, kind: str) -> list[Any]:
        """A join's place in the scope's order of joins; its node id is filled in when built."""
        entry: list[Any] = [kind, None]
        self.joins.append(entry)
        return entry

    def name(self, label: ast.Label | None, span: Span, diags: Diagnostics) -> str:
        """The next module path in the scope: the label, or the statement's position."""
        if label is None:
            name, where = str(self.counter), span
            self.counter += 1
            if name not in self.names:  # a position: a name of digits, unless a label took it
                self.names[name] = where
                return self.child(name)
        else:
            name, where = label.text, label.span
            self.counter += 1
        if not name or "." in name:
            # `.` separates module paths: "a.b" would silently nest a module in another.
            diags.error(
                E218,
                f'the name "{name}" cannot name a module: it is empty or has a `.`',
                where,
                help=["use letters, digits and `_`"],
            )
            name = f"_{self.counter - 1}"
        if name in self.names:
            diags.error(
                E404,
                f"the name `{name}` is used twice in {self.path or 'the network'}",
                where,
                notes=[Note("first used here", self.names[name])],
                help=["give each layer in a scope its own name"],
            )
        self.names[name] = where
        return self.child(name)

    def join_names(self) -> dict[int, str]:
        """The paths of the scope's joins by node id, once every label in it is known.

        A join takes no position (its siblings keep theirs) and holds no
        parameters; it is named by its kind, numbered in the order the joins
        are written when the scope has several (`concat`, `concat_1`, ...),
        skipping any name a label or position of the scope already took.
        """
        taken = set(self.names)
        count: dict[str, int] = {}
        out: dict[int, str] = {}
        for kind, node_id in self.joins:
            if node_id is None:  # never built
                continue
            n = count.get(kind, 0)
            name = kind if n == 0 else f"{kind}_{n}"
            while name in taken:
                n += 1
                name = f"{kind}_{n}"
            count[kind] = n + 1
            taken.add(name)
            out[node_id] = self.child(name)
        return out


def template_names(label: ast.Label, count: int, diags: Diagnostics) -> list[str] | None:
    """The names a `"name{N}": X * count` label gives the copies; None (reported) if malformed."""
    text = label.text
    start, _, rest = text.partition("{")
    number, close, end = rest.partition("}")
    if not close or not number.isdigit() or "{" in end or "}" in end:
        diags.error(
            E218,
            f'the naming template "{text}" needs one {{N}} where N is the first number',
            label.span,
            help=['write "denselayer{1}" to name copies denselayer1, denselayer2, ...'],
        )
        return None
    first = int(number)
    return [f"{start}{first + i}{end}" for i in range(count)]
