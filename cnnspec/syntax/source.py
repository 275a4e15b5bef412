"""Source files and spans: where every AST node, IR node and diagnostic came from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple


class Span(NamedTuple):
    """A region of a spec file; lines and columns are 1-based, end is exclusive.

    A named tuple rather than a frozen dataclass: every AST node has one, and a named
    tuple is built four times as fast, a twentieth of the in-process check budget.
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to(self, other: Span) -> Span:
        """The span from the start of self to the end of other."""
        return Span(self.file, self.line, self.col, other.end_line, other.end_col)


@dataclass
class SourceMap:
    """The text of every file read in one run, so diagnostics can quote lines."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, text: str) -> None:
        """Remember the text of a file under its display name."""
        self.texts[name] = text

    def line(self, name: str, line: int) -> str | None:
        """The 1-based line of a file, without its newline, or None if unknown."""
        text = self.texts.get(name)
        if text is None:
            return None
        lines = text.splitlines()
        if 1 <= line <= len(lines):
            return lines[line - 1]
        return "" if line == len(lines) + 1 else None


def display_name(path: str, resolved: str | None = None) -> str:
    """A path as the user should see it: relative to the working directory when it lies below it.

    resolved: os.path.realpath(path), when the caller has it (resolving walks every component).
    """
    full = resolved or os.path.realpath(path)
    cwd = os.getcwd()  # already free of symlinks, as realpath makes the path
    if full == cwd:
        return "."
    below = cwd if cwd.endswith(os.sep) else cwd + os.sep
    return full[len(below) :] if full.startswith(below) else str(Path(path))  # as given, tidied
