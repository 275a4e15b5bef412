"""One document checked through the library: its diagnostics and the elaborated networks its
lines appear in, which hover reads.

A document is checked from its text (the editor's buffer, not the file on disk), its imports
relative to its path, other open buffers standing for their files. Every network of the document
is elaborated. A network with a parameter that has no value (resnet.cnn's `ResNet(layers, ...)`)
is a family: it is elaborated through a file that gives it values, an open buffer or a sibling file
that imports the document (resnet152.cnn), and the E506 a command-line check reports is left out.
A document of blocks alone is elaborated the same way, through a file that imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnspec.analysis import Analysis
from cnnspec.diagnostics import Diagnostic, Diagnostics, SpecError
from cnnspec.diagnostics.codes import E603
from cnnspec.ir import Graph
from cnnspec.lint.static import static_warnings
from cnnspec.semantics.elaborate import Elaborator, Limits
from cnnspec.syntax import ast
from cnnspec.syntax.loader import Program, find_import, load, read_spec, search_path
from cnnspec.syntax.parser import parse
from cnnspec.syntax.source import SourceMap, Span, display_name

#: At most this many files that import a document give it networks to elaborate.
MAX_USER_CONTEXTS = 3
#: At most this many such files are read and checked while looking for them.
MAX_USERS_TRIED = 6


@dataclass
class Context:
    """One network elaborated for a document: where its shapes and counts come from."""

    network: str
    #: The network definition it elaborates (an alias's target, else the network itself).
    definition: str
    #: Display name of the file that defines the network (the document, or a file importing it).
    file: str
    graph: Graph
    analysis: Analysis


@dataclass
class DocCheck:
    """A document's text checked: what every feature reads."""

    path: str
    #: The name spans of the document carry.
    name: str
    text: str
    lines: list[str]
    #: The document's own parsed module; None when it does not parse.
    module: ast.Module | None
    #: Every definition visible from the document; None when loading failed.
    program: Program | None
    #: The errors and warnings to show on the document, each pointing into it (or at nothing).
    diagnostics: list[Diagnostic]
    contexts: list[Context] = field(default_factory=list)
    #: The modules of the files the document imports (by display name), for go to definition.
    modules: dict[str, ast.Module] = field(default_factory=dict)
    #: The directories imports are looked for in after the document's own (the server's `path` setting).
    search: list[str] = field(default_factory=list)
    #: The text of every file read (the document and its imports), for spans in other files.
    sources: SourceMap = field(default_factory=SourceMap)
    #: Hover's index of each context (hover.indexes), built on the first hover.
    hover_index: list[Any] | None = field(default=None, repr=False, compare=False)

    def import_target(self, item: ast.Import) -> str | None:
        """The resolved path of the file an import of the document names; None when none exists."""
        if self.program is not None and item.span in self.program.imports:
            return self.program.imports[item.span]
        target, _ = find_import(self.path, item.path, search_path(self.search))
        return target

    def is_here(self, span: Span | None) -> bool:
        """Whether a span points into this document."""
        return span is not None and (span.file == self.name or os.path.realpath(span.file) == self.path)


def needs_values(item: ast.NetworkDef | ast.NetworkAlias) -> bool:
    """Whether a network has a parameter without a default: it cannot be elaborated on its own."""
    return isinstance(item, ast.NetworkDef) and any(p.default is None for p in item.params)


def check_document(
    path: str,
    text: str,
    overlay: Mapping[str, str] | None = None,
    users: Callable[[], Iterable[str]] | None = None,
    limits: Limits | None = None,
    search: Sequence[str] | None = None,
    parsed: MutableMapping[tuple[str, str], ast.Module] | None = None,
) -> DocCheck:
    """Check the text of the document at path; users() lists files that may import it; search:
    directories imports are looked for in after the document's own (as `--path`); parsed: the
    caller's cache of imported files' modules (see load)."""
    real = os.path.realpath(path)
    name = display_name(path, real)
    overlay = {**(overlay or {}), real: text}
    sources = SourceMap()
    diags = Diagnostics(sources)
    lines = [s.removesuffix("\r") for s in text.split("\n")]
    result = DocCheck(real, name, text, lines, None, None, [], search=list(search or []), sources=sources)
    try:
        program = load(text, sources, result.search, file=path, overlay=overlay, parsed=parsed)
    except SpecError as e:
        diags.extend(e.diagnostics)
        result.module = _parse_alone(text, name)
        result.diagnostics = _dedupe(diags.items)
        return result
    except RecursionError:
        result.diagnostics = [Diagnostic(E603, "the spec is nested too deeply to check", None)]
        return result
    result.program = program
    result.module = program.modules.get(name)
    result.modules = dict(program.modules)
    static_warnings(program, diags)
    targets: list[tuple[Program, str]] = []
    waiting: set[str] = set()  # the document's families, until a file gives them values
    for n in program.main_networks:
        item = program.networks[n]
        if needs_values(item):
            waiting.add(n)
        else:
            targets.append((program, n))
    waiting -= {item.target for _, n in targets if isinstance(item := program.networks[n], ast.NetworkAlias)}
    for prog, n in targets:
        _elaborate(prog, n, diags, result, limits)
    if (waiting or not program.main_networks) and users is not None:
        _through_users(result, program, waiting, overlay, users(), diags, limits, parsed)
    for n in sorted(waiting, key=program.main_networks.index):
        _elaborate(program, n, diags, result, limits)  # no file gives it values: say so, as `check` does
    result.diagnostics = _dedupe(diags.items)
    return result


def _parse_alone(text: str, name: str) -> ast.Module | None:
    try:
        return parse(text, name, SourceMap())
    except (SpecError, RecursionError):
        return None


def _dedupe(items: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, str, Span | None]] = set()
    out = []
    for d in items:
        key = (d.code, d.message, d.span)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _elaborate(
    program: Program, network: str, diags: Diagnostics, result: DocCheck, limits: Limits | None, here_only: bool = False
) -> Context | None:
    """Elaborate one network and run the passes; its diagnostics join diags (only those that point
    into the document when here_only). The context when it has no errors."""
    from cnnspec.api import analyze_network

    own = Diagnostics(program.sources)
    context = None
    try:
        graph = Elaborator(program, own, limits).network(network, {}, None)
        if graph is not None and not own.has_errors:
            analysis = analyze_network(program, network, graph, own)
            if not own.has_errors:
                item = program.networks[network]
                definition = item.target if isinstance(item, ast.NetworkAlias) else network
                context = Context(network, definition, program.main_file, graph, analysis)
                result.contexts.append(context)
    except RecursionError:
        own.error(E603, "the spec is nested too deeply to check", None)
    diags.extend([d for d in own.items if not here_only or result.is_here(d.span)])
    return context


def _through_users(
    result: DocCheck,
    program: Program,
    waiting: set[str],
    overlay: Mapping[str, str],
    candidates: Iterable[str],
    diags: Diagnostics,
    limits: Limits | None,
    parsed: MutableMapping[tuple[str, str], ast.Module] | None = None,
) -> None:
    """Elaborate networks of files that import the document: each family waiting for values (taken
    out of waiting when one is found), and every block of the document, until each is covered."""
    blocks = set(program.main_blocks)
    kept = tried = 0
    for user in candidates:
        if kept >= MAX_USER_CONTEXTS or tried >= MAX_USERS_TRIED or not (waiting or blocks):
            break
        if os.path.realpath(user) == result.path:
            continue
        try:
            text = overlay[user] if user in overlay else read_spec(user)
        except Exception:  # unreadable, not text or too large: not a file that gives values
            continue
        # A file that names none of what is still uncovered cannot cover it: skip it unchecked.
        if not any(n in text for n in waiting | blocks):
            continue
        tried += 1
        try:
            prog = load(text, SourceMap(), result.search, file=user, overlay=overlay, parsed=parsed)
        except (SpecError, RecursionError):
            continue
        if not any(result.is_here(Span(name, 1, 1, 1, 1)) for name in prog.sources.texts):
            continue  # it does not import the document after all
        names = [
            n
            for n in prog.main_networks
            if (isinstance(item := prog.networks[n], ast.NetworkAlias) and item.target in waiting)
            or not needs_values(item)
        ]
        gained = False
        for n in names:
            before = len(result.contexts)
            context = _elaborate(prog, n, diags, result, limits, here_only=True)
            if context is None:
                continue
            item = prog.networks[n]
            used = {f.block for node in context.graph.nodes for f in node.trace}
            covers = (isinstance(item, ast.NetworkAlias) and item.target in waiting) or bool(used & blocks)
            if not covers:
                del result.contexts[before:]
                continue
            gained = True
            if isinstance(item, ast.NetworkAlias):
                waiting.discard(item.target)
            blocks -= used
        kept += gained


def sibling_users(path: str, overlay: Mapping[str, str], limit: int = 64) -> list[str]:
    """Files that may import the document at path: open buffers first, then the .cnn files beside
    it, each whose text names the document's file name."""
    base = os.path.basename(path)
    out = [p for p, text in sorted(overlay.items()) if p != path and base in text]
    folder = os.path.dirname(path)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".cnn"))[:limit]
    except OSError:
        names = []
    for n in names:
        p = os.path.realpath(os.path.join(folder, n))
        if p == path or p in out or p in overlay:
            continue
        try:
            with open(p, encoding="utf-8") as f:
                head = f.read(65536)
        except (OSError, UnicodeDecodeError):
            continue
        if base in head:
            out.append(p)
    return out
