"""The language server end to end: `python -m cnnspec lsp` as a subprocess, driven by pytest-lsp's client."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import make_test_lsp_client
from pytest_lsp.client import LanguageClient

from cnnspec.lsp.documents import path_to_uri
from tests.fuzz.mutate import mutate, random_spec, stock_texts

ROOT = Path(__file__).resolve().parents[1]

SMALL = """block Unit(c) {
    conv1: conv(c, 3, padding = 1)
    relu
}

network Small {
    input: 3 x 32 x 32
    stem: conv(16, 3, padding = 1)
    body: Unit(16)
    flatten
    fc: linear(10)
}
"""


@asynccontextmanager
async def server(options: dict | None = None) -> AsyncIterator[LanguageClient]:
    """A started and initialised server (with these initializationOptions), shut down at the end."""
    client = make_test_lsp_client()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    await client.start_io(sys.executable, "-m", "cnnspec", "lsp", env=env, cwd=str(ROOT))
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=path_to_uri(str(ROOT)),
                initialization_options=options,
            )
        )
        yield client
        await client.shutdown_session()
    finally:
        # After a failed assertion no exit was sent: stop() would wait for the server for ever.
        process = client._server
        if process is not None and process.returncode is None:
            process.kill()
        await client.stop()


def run(body: Callable[[LanguageClient], Awaitable[None]], options: dict | None = None) -> None:
    async def main() -> None:
        async with server(options) as client:
            await asyncio.wait_for(body(client), timeout=120)

    asyncio.run(main())


async def diagnostics_until(client: LanguageClient, uri: str, done: Callable[[list], bool]) -> list:
    """Wait for published diagnostics of uri that satisfy done."""
    while True:
        got = client.diagnostics.get(uri)
        if got is not None and done(list(got)):
            return list(got)
        await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)


def open_doc(client: LanguageClient, path: Path, text: str) -> str:
    uri = path_to_uri(str(path))
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id="cnnspec", version=1, text=text))
    )
    return uri


def edit(client: LanguageClient, uri: str, version: int, line: int, start: int, end: int, new: str) -> None:
    rng = types.Range(types.Position(line, start), types.Position(line, end))
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangePartial(range=rng, text=new)],
        )
    )


def test_invalid_file_gets_diagnostics_then_edits_clear_them(tmp_path: Path) -> None:
    broken = SMALL.replace("fc: linear(10)", "fc: linaer(10)").replace("conv(16, 3, padding = 1)", "conv(16, 3")

    async def body(client: LanguageClient) -> None:
        uri = open_doc(client, tmp_path / "small.cnn", broken)
        got = await diagnostics_until(client, uri, bool)
        assert got[0].code == "E001" or got[0].code.startswith("E0"), got
        assert got[0].severity == types.DiagnosticSeverity.Error
        assert got[0].range.start.line == 7  # the unclosed call on line 8
        # Close the call: the parse error goes, the misspelt layer is found.
        edit(client, uri, 2, 7, len("    stem: conv(16, 3"), len("    stem: conv(16, 3"), ", padding = 1)")
        got = await diagnostics_until(client, uri, lambda d: any(x.code == "E101" for x in d))
        e101 = next(x for x in got if x.code == "E101")
        assert (e101.range.start.line, e101.range.start.character) == (10, 8)
        assert (e101.range.end.line, e101.range.end.character) == (10, 14)
        assert "did you mean `linear`" in e101.message
        # Two more edits, quickly: fix the name in two steps; the file becomes valid.
        edit(client, uri, 3, 10, 8, 14, "lin")
        edit(client, uri, 4, 10, 11, 11, "ear")
        await diagnostics_until(client, uri, lambda d: d == [])

    run(body)


def test_a_file_typed_from_invalid_to_valid_one_key_at_a_time(tmp_path: Path) -> None:
    """Edits arrive faster than the server checks (one per key, requests between them): the
    diagnostics that end up published are those of the final, valid text."""
    typed = ", padding = 1)"
    start = SMALL.replace("conv(16, 3, padding = 1)", "conv(16, 3")

    async def body(client: LanguageClient) -> None:
        uri = open_doc(client, tmp_path / "small.cnn", start)
        got = await diagnostics_until(client, uri, bool)
        assert [d.code for d in got] == ["E003"]  # the `(` never closed
        doc = types.TextDocumentIdentifier(uri=uri)
        col = len("    stem: conv(16, 3")
        for i, key in enumerate(typed):
            edit(client, uri, i + 2, 7, col + i, col + i, key)
            if i % 4 == 0:  # a request now and then reads the text as it is at that moment
                await client.text_document_hover_async(types.HoverParams(doc, types.Position(10, 6)))
        await diagnostics_until(client, uri, lambda d: d == [])
        hover = await client.text_document_hover_async(types.HoverParams(doc, types.Position(7, 8)))
        assert hover is not None and "3×32×32 → 16×32×32" in hover.contents.value

    run(body)


def test_the_path_option_adds_import_directories(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "units.cnn").write_text("block Unit(c) { conv(c, 3, padding = 1) }\n")
    text = 'import "units.cnn"\nnetwork N {\n    input: 3 x 8 x 8\n    Unit(4)\n}\n'

    async def body(client: LanguageClient) -> None:
        uri = open_doc(client, tmp_path / "main.cnn", text)
        await diagnostics_until(client, uri, lambda d: d == [])  # E401 without the option

    run(body, {"path": [str(lib)]})


def test_hover_definition_completion_symbols(tmp_path: Path) -> None:
    async def body(client: LanguageClient) -> None:
        uri = open_doc(client, tmp_path / "small.cnn", SMALL)
        await diagnostics_until(client, uri, lambda d: d == [])
        doc = types.TextDocumentIdentifier(uri=uri)
        hover = await client.text_document_hover_async(types.HoverParams(doc, types.Position(7, 8)))
        assert hover is not None
        text = hover.contents.value
        assert "stem" in text and "3×32×32 → 16×32×32" in text and "448 params" in text, text
        inner = await client.text_document_hover_async(types.HoverParams(doc, types.Position(1, 6)))
        assert "body.conv1" in inner.contents.value and "2,320 params" in inner.contents.value
        call = await client.text_document_hover_async(types.HoverParams(doc, types.Position(8, 10)))
        assert "totals of the instance" in call.contents.value and "body  16×32×32 → 16×32×32" in call.contents.value
        loc = await client.text_document_definition_async(types.DefinitionParams(doc, types.Position(8, 11)))
        assert loc.uri == uri and loc.range.start == types.Position(0, 6)
        comp = await client.text_document_completion_async(types.CompletionParams(doc, types.Position(10, 4)))
        items = {i.label: i for i in comp.items}
        assert items["conv"].detail.startswith("conv(out, kernel")
        assert items["Unit"].detail == "Unit(c)"
        args = await client.text_document_completion_async(types.CompletionParams(doc, types.Position(7, 15)))
        assert "padding" in {i.label for i in args.items}
        symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(doc))
        assert [(s.name, s.kind) for s in symbols] == [
            ("Unit", types.SymbolKind.Class),
            ("Small", types.SymbolKind.Module),
        ]

    run(body)


def test_definition_across_imports_and_of_an_import() -> None:
    async def body(client: LanguageClient) -> None:
        path = ROOT / "specs" / "resnet152.cnn"
        uri = open_doc(client, path, path.read_text())
        await diagnostics_until(client, uri, lambda d: d == [])
        doc = types.TextDocumentIdentifier(uri=uri)
        loc = await client.text_document_definition_async(types.DefinitionParams(doc, types.Position(2, 22)))
        assert loc.uri == path_to_uri(str(ROOT / "specs" / "resnet.cnn"))
        assert loc.range.start.line == 34  # network ResNet
        imp = await client.text_document_definition_async(types.DefinitionParams(doc, types.Position(1, 10)))
        assert imp.uri == path_to_uri(str(ROOT / "specs" / "resnet.cnn"))

    run(body)


def test_formatting_gives_edits(tmp_path: Path) -> None:
    async def body(client: LanguageClient) -> None:
        messy = SMALL.replace("conv(16, 3, padding = 1)", "conv(16,3,padding=1)")
        uri = open_doc(client, tmp_path / "small.cnn", messy)
        await diagnostics_until(client, uri, lambda d: d == [])
        edits = await client.text_document_formatting_async(
            types.DocumentFormattingParams(types.TextDocumentIdentifier(uri=uri), types.FormattingOptions(4, True))
        )
        assert edits and "conv(16, 3, padding = 1)" in edits[0].new_text

    run(body)


def _fuzz(n: int, seed: int) -> None:
    """The fuzzer's texts as didChange events, each read by a request (so each is checked); the
    server still answers a hover on a valid text at the end."""
    rng = random.Random(seed)
    stock = stock_texts()
    texts = [mutate(rng.choice(stock)[1], rng) if rng.random() < 0.7 else random_spec(rng) for _ in range(n)]

    async def body(client: LanguageClient) -> None:
        uri = open_doc(client, ROOT / "specs" / "fuzzed.cnn", "")
        doc = types.TextDocumentIdentifier(uri=uri)

        def change(version: int, text: str) -> None:
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    [types.TextDocumentContentChangeWholeDocument(text=text)],
                )
            )

        for i, text in enumerate(texts):
            change(i + 2, text)
            position = types.Position(rng.randrange(30), rng.randrange(40))
            if i % 3 == 0:
                await client.text_document_hover_async(types.HoverParams(doc, position))
            elif i % 3 == 1:
                await client.text_document_completion_async(types.CompletionParams(doc, position))
                await client.text_document_definition_async(types.DefinitionParams(doc, position))
            else:
                await client.text_document_document_symbol_async(types.DocumentSymbolParams(doc))
                await client.text_document_formatting_async(
                    types.DocumentFormattingParams(doc, types.FormattingOptions(4, True))
                )
        change(n + 2, SMALL)
        hover = await client.text_document_hover_async(types.HoverParams(doc, types.Position(7, 8)))
        assert hover is not None and "3×32×32 → 16×32×32" in hover.contents.value
        assert client.error is None  # no error response and no server exit on the way

    run(body)


def test_server_survives_fuzzed_texts() -> None:
    _fuzz(60, 2024)


@pytest.mark.slow
def test_server_survives_many_fuzzed_texts() -> None:
    _fuzz(400, 7)
