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


#: Longest name shown whole in diagnostics and summaries; a longer one is shown by its start and length.
MAX_SHOWN_NAME = 60


def elide(text: str, limit: int = MAX_SHOWN_NAME) -> str:
    """text itself, or, when longer than limit, its start, "…" and its length: a name of a
    million characters must not become a million characters of output."""
    if len(text) <= limit:
        return text
    return f"{text[: max(1, limit - 24)]}…({len(text):,} characters)"


#: Control characters drawn as their Unicode control pictures (U+2400 block): NUL is ␀, ESC ␛,
#: DEL ␡. One character each, so a caret under a quoted line stays in its column.
_PICTURES = {c: chr(0x2400 + c) for c in range(0x20)} | {0x7F: "\u2421"}


def visible(text: str) -> str:
    """text with every control character drawn visibly (␀ for NUL) and other unprintable
    characters (bidi overrides, C1 controls, zero-width marks) as U+FFFD: a spec's bytes must
    not reach the terminal raw, where ESC could restyle it and a bidi override reorder it."""
    if text.isprintable():
        return text
    out = text.translate(_PICTURES)
    return out if out.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in out)


@dataclass
class SourceMap:
    """The text of every file read in one run, so diagnostics can quote lines."""

    texts: dict[str, str] = field(default_factory=dict)
    #: Each file's lines, split on first use (every diagnostic quotes a line; splitting a large
    #: file for each one would make rendering many diagnostics quadratic).
    _lines: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)

    def add(self, name: str, text: str) -> None:
        """Remember the text of a file under its display name."""
        self.texts[name] = text
        self._lines.pop(name, None)

    def line(self, name: str, line: int) -> str | None:
        """The 1-based line of a file, without its line end, or None if unknown.

        Lines end at \\n only, as the parser counts them: a form feed or U+2028 inside a line
        does not end it (str.splitlines would split there and quote the wrong line).
        """
        lines = self._lines.get(name)
        if lines is None:
            text = self.texts.get(name)
            if text is None:
                return None
            if text.endswith("\n"):
                text = text[:-1]
            lines = self._lines[name] = [s.removesuffix("\r") for s in text.split("\n")]
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
