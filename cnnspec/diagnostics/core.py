"""Diagnostics: the one format every error and warning of cnnspec takes.

A diagnostic carries a stable code, a message, the span it points at, notes
that point at related spans, help lines, and the chain of block
instantiations that led to it. Passes collect diagnostics and the driver
raises them together as one SpecError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from cnnspec.syntax.source import SourceMap, Span, elide, visible

Severity = Literal["error", "warning"]

#: How many diagnostics are shown before "and N more".
MAX_SHOWN = 20
#: How many diagnostics one run keeps; beyond this they are only counted, so a
#: loop that repeats one mistake a million times cannot fill the memory.
MAX_KEPT = 500
#: Longest source line quoted in full.
MAX_LINE = 160
#: Longest run of non-blank characters (a name, a string, a number) a message shows whole, and
#: the longest message, help or note text shown; longer ones are elided (see bounded).
MAX_WORD = 300
MAX_MESSAGE = 2000

_LONG_WORD = re.compile(rf"\S{{{MAX_WORD + 1},}}")


def bounded(text: str) -> str:
    """A message as shown: each very long word (a name or string from the spec) shortened to its
    start and length, and the whole cut at MAX_MESSAGE, so a spec of megabyte-long names or strings
    cannot make megabytes of diagnostics. Control characters are left for the renderer (JSON
    escapes them itself)."""
    if len(text) > MAX_WORD:
        text = _LONG_WORD.sub(lambda m: elide(m.group(), MAX_WORD // 2), text)
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    return text


@dataclass(frozen=True, slots=True)
class Note:
    """A secondary message, optionally pointing at another span."""

    message: str
    span: Span | None = None


class Frame(NamedTuple):
    """One block instantiation on the way to a diagnostic (a tuple: one is made per block instance)."""

    block: str
    path: str
    span: Span


@dataclass(slots=True)
class Diagnostic:
    """One error or warning, pointing at the spec."""

    code: str
    message: str
    span: Span | None
    severity: Severity = "error"
    notes: list[Note] = field(default_factory=list)
    help: list[str] = field(default_factory=list)
    trace: tuple[Frame, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The machine-readable form (``--diagnostics json``); the span's fields are None when it has none."""
        return {
            **dict.fromkeys(_SPAN_FIELDS),
            **_span_dict(self.span),
            "severity": self.severity,
            "code": self.code,
            "message": bounded(self.message),
            "notes": [{"message": bounded(n.message), **_span_dict(n.span)} for n in self.notes]
            + [{"message": bounded(_frame_text(f))} for f in self.trace],
            "help": [bounded(h) for h in self.help],
        }


_SPAN_FIELDS = ("file", "line", "col", "end_line", "end_col")


def _span_dict(span: Span | None) -> dict[str, object]:
    """The fields of a span by name, in _SPAN_FIELDS order; empty for no span."""
    return {} if span is None else {name: getattr(span, name) for name in _SPAN_FIELDS}


def _errors_first(diags: list[Diagnostic]) -> list[Diagnostic]:
    """The errors, then the warnings, each in the order found (callers that show one line show the first)."""
    return [d for d in diags if d.severity == "error"] + [d for d in diags if d.severity != "error"]


class SpecError(Exception):
    """A spec has errors. Carries every diagnostic, each with its span.

    omitted counts diagnostics beyond MAX_KEPT that were counted but not kept, omitted_warnings
    how many of those are warnings (the count at the end names errors and warnings apart).
    """

    def __init__(
        self,
        diagnostics: list[Diagnostic],
        sources: SourceMap | None = None,
        omitted: int = 0,
        omitted_warnings: int = 0,
    ) -> None:
        self.diagnostics = _errors_first(diagnostics)
        self.sources = sources or SourceMap()
        self.omitted = omitted
        self.omitted_warnings = omitted_warnings
        super().__init__(self.render(color=False))

    @property
    def errors(self) -> list[Diagnostic]:
        """The diagnostics of severity error."""
        return [d for d in self.diagnostics if d.severity == "error"]

    def render(self, color: bool = False) -> str:
        """All diagnostics as compiler-style text."""
        return render_all(self.diagnostics, self.sources, color, self.omitted, self.omitted_warnings)


class Diagnostics:
    """A collector that passes append to; raise_if_errors ends a stage.

    The same mistake reached again (the same code, message and span, e.g. in
    every instance of a block or every turn of a loop) is recorded once: one
    root cause gives one diagnostic, with the trace of its first instance.
    """

    def __init__(self, sources: SourceMap) -> None:
        self.sources = sources
        self.items: list[Diagnostic] = []
        self.omitted = 0
        self.omitted_warnings = 0
        self._seen: set[tuple[str, str, Span | None]] = set()

    def _add(self, d: Diagnostic) -> Diagnostic:
        key = (d.code, d.message, d.span)
        if key in self._seen:
            return d
        self._seen.add(key)
        if len(self.items) >= MAX_KEPT:
            self.omitted += 1
            self.omitted_warnings += d.severity != "error"
        else:
            self.items.append(d)
        return d

    def error(self, code: str, message: str, span: Span | None, **kw: object) -> Diagnostic:
        """Record an error and return it (so callers can add notes)."""
        return self._add(Diagnostic(code, message, span, "error", **kw))  # type: ignore[arg-type]

    def warning(self, code: str, message: str, span: Span | None, **kw: object) -> Diagnostic:
        """Record a warning."""
        return self._add(Diagnostic(code, message, span, "warning", **kw))  # type: ignore[arg-type]

    def extend(self, diags: list[Diagnostic], omitted: int = 0, omitted_warnings: int = 0) -> None:
        """Add diagnostics from another collector or an error, with the count of those it left out."""
        for d in diags:
            self._add(d)
        self.omitted += omitted
        self.omitted_warnings += omitted_warnings

    @property
    def has_errors(self) -> bool:
        """Whether any error was recorded."""
        return self.omitted > self.omitted_warnings or any(d.severity == "error" for d in self.items)

    @property
    def warnings(self) -> list[Diagnostic]:
        """The warnings recorded so far."""
        return [d for d in self.items if d.severity == "warning"]

    def raise_if_errors(self) -> None:
        """End the stage: raise SpecError with everything collected if any error."""
        if self.has_errors:
            raise SpecError(list(self.items), self.sources, self.omitted, self.omitted_warnings)


def _frame_text(f: Frame) -> str:
    return f"in {f.block}, instantiated as {f.path or '<network>'} at {f.span}"


def _style(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _quote(span: Span, sources: SourceMap, color: bool, marker: str = "^") -> list[str]:
    src = sources.line(span.file, span.line)
    if src is None:
        return []
    gutter = " " * len(str(span.line))
    end = span.end_col if span.end_line == span.line else len(src) + 1
    col = span.col
    if len(src) > MAX_LINE:
        # A generated spec may hold one enormous line: quote a window around the span.
        start = max(0, col - 1 - MAX_LINE // 2)
        src = ("…" if start else "") + src[start : start + MAX_LINE] + ("…" if start + MAX_LINE < len(src) else "")
        shift = start - (1 if start else 0)
        col, end = col - shift, min(end - shift, len(src) + 1)
    # One column per character, so the caret lines up: tabs as spaces, control characters as
    # their pictures (a NUL or an ESC echoed raw would garble the terminal).
    src = visible(src.replace("\t", " "))
    width = max(1, end - col)
    underline = " " * (col - 1) + marker * width
    return [
        f"{gutter} |",
        f"{span.line} | {src}",
        f"{gutter} | " + _style(underline, "1;31" if marker == "^" else "1;34", color),
    ]


def _shown(text: str) -> str:
    return visible(bounded(text))


def render(d: Diagnostic, sources: SourceMap, color: bool = False) -> str:
    """One diagnostic: location, message, quoted source with caret, notes, help."""
    where = f"{visible(str(d.span))}: " if d.span else ""
    sev = _style(d.severity, "1;31" if d.severity == "error" else "1;33", color)
    lines = [f"{where}{sev}[{d.code}]: {_shown(d.message)}"]
    if d.span:
        lines += _quote(d.span, sources, color)
    for n in d.notes:
        if n.span:
            lines.append(f"note: {_shown(n.message)} (at {n.span})")
            lines += _quote(n.span, sources, color, marker="-")
        else:
            lines.append(f"note: {_shown(n.message)}")
    for f in reversed(d.trace):
        lines.append(f"note: {_shown(_frame_text(f))}")
    for h in d.help:
        lines.append(f"help: {_shown(h)}")
    return "\n".join(lines)


def render_all(
    diags: list[Diagnostic], sources: SourceMap, color: bool = False, omitted: int = 0, omitted_warnings: int = 0
) -> str:
    """Every diagnostic, errors before warnings, in the order found, capped at MAX_SHOWN: the rest
    are counted ("... and N more"), and the count at the end includes the omitted ones of each kind."""
    ordered = _errors_first(diags)
    shown = ordered[:MAX_SHOWN]
    parts = [render(d, sources, color) for d in shown]
    more = len(ordered) - len(shown) + omitted
    if more:
        parts.append(f"... and {more} more")
    n_err = sum(d.severity == "error" for d in diags) + omitted - omitted_warnings
    n_warn = len(diags) - sum(d.severity == "error" for d in diags) + omitted_warnings
    if n_err:
        tail = f"{n_err} error{'s' if n_err != 1 else ''}"
        if n_warn:
            tail += f" and {n_warn} warning{'s' if n_warn != 1 else ''}"
        parts.append(f"aborting: {tail}")
    return "\n\n".join(parts)
