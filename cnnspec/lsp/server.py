"""The pygls wiring of `cnnspec lsp`: requests in, the pure functions of this package, answers out.

All state lives on the server object made by make_server(): the open documents, each one's
latest check, and the check waiting for typing to pause. A check runs on the event loop, a short
delay after the last edit (one check per pause, not one per keystroke); a request reads a check of
the document's current text, checking it first when edits have arrived since.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from cnnspec.diagnostics import Diagnostic, SpecError
from cnnspec.lsp.check import DocCheck, check_document, sibling_users
from cnnspec.lsp.completion import completions
from cnnspec.lsp.diagnostics import to_lsp
from cnnspec.lsp.documents import Document, Documents, to_span_position, utf16_len
from cnnspec.lsp.hover import hover_text
from cnnspec.lsp.navigation import definition
from cnnspec.lsp.symbols import document_symbols
from cnnspec.syntax import ast
from cnnspec.syntax.printer import format_source

logger = logging.getLogger(__name__)

#: Seconds of quiet after an edit before the document is checked.
CHECK_DELAY = 0.15
#: Imported modules kept for re-checks before the cache is emptied.
MAX_PARSED = 64
#: The code of the diagnostic shown when checking hits a bug in cnnspec (never a spec's fault).
INTERNAL = "internal"


class CnnspecServer(LanguageServer):
    """The language server: pygls's, plus the open documents and their checks."""

    def __init__(self, delay: float = CHECK_DELAY) -> None:
        from cnnspec import __version__

        super().__init__("cnnspec", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.documents = Documents()
        #: Each open document's latest check (of the text it had then).
        self.checks: dict[str, DocCheck] = {}
        #: Each document's latest check that elaborated a network: hover reads it while the text is broken.
        self.good: dict[str, DocCheck] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.delay = delay
        #: Directories imports are looked for in after the document's own (`--path`); the client's
        #: initializationOptions {"path": [...]} sets them, CNNSPEC_PATH and the stock specs follow.
        self.search: list[str] = []
        #: Imported files' modules by (name, text): a re-check parses only the edited buffer.
        self.parsed: dict[tuple[str, str], ast.Module] = {}

    def check(self, uri: str) -> DocCheck | None:
        """The check of a document's current text, checking it now if it changed since."""
        doc = self.documents.get(uri)
        if doc is None:
            return None
        done = self.checks.get(uri)
        if done is not None and done.text == doc.text:
            return done
        return self.recheck(doc)

    def recheck(self, doc: Document) -> DocCheck:
        """Check a document's text and keep the result (never raises: a bug becomes a diagnostic)."""
        overlay = self.documents.overlay()
        try:
            result = check_document(
                doc.path,
                doc.text,
                overlay,
                lambda: sibling_users(doc.path, overlay),
                search=self.search,
                parsed=self.parsed,
            )
            if len(self.parsed) > MAX_PARSED:  # old texts of files edited meanwhile: start again
                self.parsed.clear()
        except Exception as e:  # a bug in cnnspec must not take the editor's server down
            logger.exception("checking %s failed", doc.uri)
            result = DocCheck(doc.path, doc.path, doc.text, doc.text.split("\n"), None, None, [])
            result.diagnostics = [
                Diagnostic(
                    INTERNAL, f"cnnspec failed to check this file ({type(e).__name__}: {e}); please report it", None
                )
            ]
        self.checks[doc.uri] = result
        if result.contexts or (result.module is not None and doc.uri not in self.good):
            self.good[doc.uri] = result
        return result

    def publish(self, uri: str) -> None:
        """Check a document if needed and send its diagnostics."""
        check = self.check(uri)
        if check is None:
            return
        doc = self.documents.get(uri)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=to_lsp(check), version=doc.version if doc else None)
        )

    def schedule(self, uri: str) -> None:
        """Check a document once edits pause, and the open documents that import it after it."""
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self._later(uri))

    async def _later(self, uri: str) -> None:
        await asyncio.sleep(self.delay)
        self.pending.pop(uri, None)
        try:
            self.publish(uri)
            doc = self.documents.get(uri)
            for other, check in list(self.checks.items()):
                if other != uri and doc is not None and _reads(check, doc.path):
                    self.publish(other)
        except Exception:
            logger.exception("publishing diagnostics failed")

    def for_hover(self, uri: str) -> DocCheck | None:
        """The check hover reads: the current one, or the last that elaborated a network with the same lines."""
        check = self.check(uri)
        if check is None or check.contexts:
            return check
        good = self.good.get(uri)
        return good if good is not None and len(good.lines) == len(check.lines) else check


def _reads(check: DocCheck, path: str) -> bool:
    """Whether a check read the file at path (the document imports it)."""
    texts = check.program.sources.texts if check.program else {}
    return any(os.path.realpath(name) == path for name in texts)


def _position(check: DocCheck, pos: types.Position) -> tuple[int, int]:
    return to_span_position(check.lines, pos)


def make_server(delay: float = CHECK_DELAY) -> CnnspecServer:
    """A server with every feature registered (a new one each call: no state is shared)."""
    server = CnnspecServer(delay)

    @server.feature(types.INITIALIZE)
    def initialize(ls: CnnspecServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        path = options.get("path") if isinstance(options, dict) else None
        if isinstance(path, str):
            path = [path]
        if isinstance(path, list):
            ls.search = [str(p) for p in path if isinstance(p, str) and p]

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CnnspecServer, params: types.DidOpenTextDocumentParams) -> None:
        d = params.text_document
        ls.documents.open(d.uri, d.text, d.version)
        ls.publish(d.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: CnnspecServer, params: types.DidChangeTextDocumentParams) -> None:
        d = params.text_document
        if ls.documents.change(d.uri, list(params.content_changes), d.version) is not None:
            ls.schedule(d.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CnnspecServer, params: types.DidSaveTextDocumentParams) -> None:
        # Files beside it may import it: a saved family file changes what siblings give it.
        for uri in list(ls.documents.docs):
            ls.checks.pop(uri, None)
            ls.publish(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CnnspecServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.documents.close(uri)
        ls.checks.pop(uri, None)
        ls.good.pop(uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: CnnspecServer, params: types.HoverParams) -> types.Hover | None:
        check = ls.for_hover(params.text_document.uri)
        if check is None:
            return None
        text = hover_text(check, *_position(check, params.position))
        if text is None:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def goto(ls: CnnspecServer, params: types.DefinitionParams) -> types.Location | None:
        check = ls.check(params.text_document.uri)
        return None if check is None else definition(check, *_position(check, params.position))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["(", ","]))
    def complete(ls: CnnspecServer, params: types.CompletionParams) -> types.CompletionList:
        check = ls.check(params.text_document.uri)
        items = [] if check is None else completions(check, *_position(check, params.position))
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(ls: CnnspecServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        check = ls.check(params.text_document.uri)
        if check is not None and check.module is None:
            check = ls.good.get(params.text_document.uri, check)
        return [] if check is None else document_symbols(check)

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: CnnspecServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        doc = ls.documents.get(params.text_document.uri)
        return None if doc is None else format_edits(doc)

    return server


def format_edits(doc: Document) -> list[types.TextEdit] | None:
    """The edit that formats a document as `cnnspec fmt` does: none when it is formatted already,
    None (refused, the text left as it is) when it does not parse."""
    try:
        new = format_source(doc.text, doc.path)
    except SpecError:
        return None  # its diagnostics are already shown
    except (RecursionError, ValueError):
        logger.warning("formatting %s failed", doc.uri, exc_info=True)
        return None
    if new == doc.text:
        return []
    raw = doc.text.split("\n")
    end = types.Position(len(raw) - 1, utf16_len(raw[-1]))
    return [types.TextEdit(range=types.Range(types.Position(0, 0), end), new_text=new)]


def serve() -> int:
    """Run the server over stdin and stdout until the client says exit."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    make_server().start_io()
    return 0
