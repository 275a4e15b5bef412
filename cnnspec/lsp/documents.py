"""The open documents' text, and positions in it: LSP's 0-based lines and UTF-16 columns."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlparse

from lsprotocol import types

from cnnspec.syntax.source import Span


def utf16_len(text: str) -> int:
    """How many UTF-16 code units text takes (a character outside the BMP takes two)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def lines_of(text: str) -> list[str]:
    """The lines of text as the parser counts them: split at \\n only, each without its \\r."""
    return [s.removesuffix("\r") for s in text.split("\n")]


def char_index(line: str, utf16_col: int) -> int:
    """The index in line of the character at a UTF-16 column (clamped to the line's end)."""
    units = 0
    for i, c in enumerate(line):
        if units >= utf16_col:
            return i
        units += 2 if ord(c) > 0xFFFF else 1
    return len(line)


def offset_of(text: str, pos: types.Position) -> int:
    """The index in text of an LSP position; past the last line or a line's end, clamped."""
    start = 0
    for _ in range(pos.line):
        nl = text.find("\n", start)
        if nl < 0:
            return len(text)
        start = nl + 1
    end = text.find("\n", start)
    line = text[start : len(text) if end < 0 else end]
    return start + char_index(line, pos.character)


def position(lines: list[str], line: int, col: int) -> types.Position:
    """The LSP position of a 1-based line and column (a character index + 1) of a spec."""
    if line < 1:
        return types.Position(0, 0)
    if line > len(lines):
        return types.Position(len(lines), 0)
    text = lines[line - 1]
    return types.Position(line - 1, utf16_len(text[: max(0, col - 1)]))


def to_range(lines: list[str], span: Span) -> types.Range:
    """The LSP range of a span (1-based, end exclusive) in a document of these lines."""
    start = position(lines, span.line, span.col)
    end = position(lines, span.end_line, span.end_col)
    if (end.line, end.character) < (start.line, start.character):
        end = start
    return types.Range(start, end)


def to_span_position(lines: list[str], pos: types.Position) -> tuple[int, int]:
    """The 1-based (line, column) of an LSP position, as spans count them."""
    if pos.line >= len(lines):
        return pos.line + 1, 1
    return pos.line + 1, char_index(lines[pos.line], pos.character) + 1


def uri_to_path(uri: str) -> str | None:
    """The local path of a file: URI; None for any other scheme (an untitled buffer)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return unquote(parsed.path)


def path_to_uri(path: str) -> str:
    """The file: URI of a local path."""
    return "file://" + quote(os.path.abspath(path))


@dataclass
class Document:
    """One open document: its URI, the file it stands for, its text and version."""

    uri: str
    path: str
    text: str
    version: int | None = None


@dataclass
class Documents:
    """The documents an editor has open, with every edit applied (full and incremental sync)."""

    docs: dict[str, Document] = field(default_factory=dict)

    def open(self, uri: str, text: str, version: int | None = None) -> Document:
        """Start tracking a document with its text."""
        # A buffer that is no file (untitled:) still gets a path, in the working directory, for its imports.
        path = uri_to_path(uri) or os.path.join(os.getcwd(), "untitled.cnn")
        doc = self.docs[uri] = Document(uri, os.path.realpath(path), text, version)
        return doc

    def change(
        self, uri: str, changes: list[types.TextDocumentContentChangeEvent], version: int | None = None
    ) -> Document | None:
        """Apply the edits of one didChange, in order; None for a document not open."""
        doc = self.docs.get(uri)
        if doc is None:
            return None
        text = doc.text
        for change in changes:
            text = apply_change(text, change)
        doc.text, doc.version = text, version
        return doc

    def close(self, uri: str) -> None:
        """Stop tracking a document."""
        self.docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        """The open document of a URI, or None."""
        return self.docs.get(uri)

    def overlay(self) -> dict[str, str]:
        """The open documents' texts by resolved path: what a check reads instead of the files."""
        return {d.path: d.text for d in self.docs.values()}


def apply_change(text: str, change: types.TextDocumentContentChangeEvent) -> str:
    """text with one content change applied: a whole new text, or a range replaced."""
    rng = getattr(change, "range", None)
    if rng is None:
        return change.text
    start, end = offset_of(text, rng.start), offset_of(text, rng.end)
    if end < start:
        start, end = end, start
    return text[:start] + change.text + text[end:]
