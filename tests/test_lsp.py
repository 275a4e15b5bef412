"""The language server's features in process: each a function of a document's check (cnnspec/lsp),
on the stock specs and small documents; test_lsp_server.py drives the real server end to end."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from lsprotocol import types

from cnnspec.lsp.check import DocCheck, check_document, sibling_users
from cnnspec.lsp.completion import completions
from cnnspec.lsp.diagnostics import to_lsp
from cnnspec.lsp.documents import Document, Documents, apply_change, path_to_uri, to_span_position
from cnnspec.lsp.hover import hover_text
from cnnspec.lsp.navigation import definition
from cnnspec.lsp.server import INTERNAL, format_edits, make_server
from cnnspec.lsp.symbols import document_symbols
from cnnspec.syntax.printer import format_source

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def checked(path: Path, text: str | None = None) -> DocCheck:
    """A document's check as the server makes it (sibling files give a family its values)."""
    real = os.path.realpath(path)
    return check_document(real, path.read_text() if text is None else text, {}, lambda: sibling_users(real, {}))


def line_of(check: DocCheck, needle: str) -> int:
    """The 1-based line of the first line holding needle."""
    return next(i for i, s in enumerate(check.lines, 1) if needle in s)


def hover_at(check: DocCheck, needle: str, offset: int = 0) -> str:
    """The hover at the first character of needle (plus offset) in the document."""
    line = line_of(check, needle)
    text = hover_text(check, line, check.lines[line - 1].index(needle) + 1 + offset)
    assert text is not None, needle
    return text


@pytest.fixture(scope="module")
def resnet() -> DocCheck:
    return checked(SPECS / "resnet.cnn")


def test_a_family_file_is_elaborated_through_the_files_that_import_it(resnet: DocCheck) -> None:
    assert {c.network for c in resnet.contexts} >= {"resnet18"}
    assert any(c.network in ("resnet50", "resnet101", "resnet152") for c in resnet.contexts)
    # `ResNet(layers, ...)` needs values, but a sibling file gives them: no E506, only the two warnings.
    assert sorted(d.code for d in resnet.diagnostics) == ["W002", "W002"]


def test_hover_inside_a_block_lists_each_call_site(resnet: DocCheck) -> None:
    text = hover_at(resnet, "conv2: conv(int(planes")
    assert text.startswith("**conv2: conv**")
    assert "layers made by this line" in text
    assert "layer1.0.conv2  64×56×56 → 64×56×56    36,864 params   115.61M MACs" in text
    assert "layer2.0.conv2  128×56×56 → 128×28×28  147,456 params  115.61M MACs" in text
    assert "more" in text  # only the first rows are listed


def test_hover_on_a_block_call_gives_the_instance_totals(resnet: DocCheck) -> None:
    text = hover_at(resnet, "layer2:  Stage")
    assert "totals of the instance" in text
    # ResNet-18's layer2: two BasicBlocks, 525,568 parameters (torchvision's layer2).
    assert "layer2  64×56×56 → 128×28×28  525,568 params  411.04M MACs" in text


def test_hover_on_the_final_linear_and_on_a_residual(resnet: DocCheck) -> None:
    fc = hover_at(resnet, "fc:      linear")
    assert "fc  512 → 1000  513,000 params  512.00K MACs" in fc
    residual = hover_at(resnet, "residual {")
    assert "residual in 8 instances of BasicBlock, totals of each" in residual
    assert "layer2.0  64×56×56 → 128×28×28   230,144 params" in residual


def test_hover_on_an_alias_gives_the_network_totals() -> None:
    check = checked(SPECS / "resnet152.cnn")
    assert check.diagnostics == []
    text = hover_at(check, "resnet152 =")
    # torchvision's ResNet-152: 60,192,808 parameters, 11.51 GMACs.
    assert "resnet152  3×224×224 → 1000  60,192,808 params  11.51G MACs" in text


def test_hover_says_nothing_outside_statements_and_on_broken_text(resnet: DocCheck) -> None:
    assert hover_text(resnet, 1, 3) is None  # a comment
    broken = checked(SPECS / "resnet18.cnn", "network N {\n    input: 3 x 8 x 8\n    conv(4, \n")
    assert broken.module is None and hover_text(broken, 3, 6) is None


def test_hover_on_a_line_no_network_elaborates_gives_the_signature(tmp_path: Path) -> None:
    check = checked(tmp_path / "blocks.cnn", "block B(c) {\n    conv(c, 3)\n    relu\n}\n")
    assert check.contexts == [] and [d.code for d in check.diagnostics] == ["W001"]  # B is never used
    text = hover_text(check, 2, 6)
    assert text is not None and "conv(out, kernel" in text and "no network elaborated here" in text


def test_diagnostics_carry_code_range_severity_and_related_spans(tmp_path: Path) -> None:
    text = "block B(c) { conv(c, 3) }\nblock B(c, unused) { relu }\nnetwork N {\n    input: 3 x 8 x 8\n    B(4)\n}\n"
    path = tmp_path / "twice.cnn"
    got = to_lsp(checked(path, text))
    dup = next(d for d in got if d.severity == types.DiagnosticSeverity.Error)
    assert dup.code and dup.code.startswith("E") and dup.source == "cnnspec"
    assert (dup.range.start.line, dup.range.start.character) == (1, 6)
    assert dup.related_information is not None
    first = dup.related_information[0]
    assert first.location.uri == path_to_uri(os.path.realpath(path))
    assert (first.location.range.start.line, first.location.range.start.character) == (0, 6)
    assert first.message == "first defined here"


def test_a_warning_is_a_warning_and_an_imported_files_error_shows_on_the_import(tmp_path: Path) -> None:
    (tmp_path / "lib.cnn").write_text("block Lib(c) {\n    conv(c, 3\n}\n")
    main = tmp_path / "main.cnn"
    text = 'import "lib.cnn"\nnetwork N(unused = 1) {\n    input: 3 x 8 x 8\n    conv(4, 3)\n}\n'
    got = to_lsp(checked(main, text))
    assert [d.range.start.line for d in got] == [0], got  # the import's line
    assert "lib.cnn:3:1: unexpected `}`" in got[0].message
    assert got[0].related_information is not None
    here = got[0].related_information[0]
    assert here.location.uri == path_to_uri(os.path.realpath(tmp_path / "lib.cnn"))
    assert (here.location.range.start.line, here.location.range.start.character) == (2, 0)
    main.write_text(text)
    (tmp_path / "lib.cnn").write_text("block Lib(c) { conv(c, 3) }\n")
    warned = to_lsp(checked(main))
    assert [(d.code, d.severity) for d in warned] == [("W002", types.DiagnosticSeverity.Warning)]


def test_an_unsaved_buffer_stands_for_its_file_in_imports(tmp_path: Path) -> None:
    lib, main = tmp_path / "lib.cnn", tmp_path / "main.cnn"
    lib.write_text("block Lib(c) { conv(c, 3) }\n")
    text = 'import "lib.cnn"\nnetwork N {\n    input: 3 x 8 x 8\n    Lib(4)\n}\n'
    overlay = {os.path.realpath(lib): "block Lib(c) { conv(c, 3, padding = 1) }\n"}
    check = check_document(os.path.realpath(main), text, overlay)
    assert "4×8×8" in (hover_text(check, 4, 6) or "")  # padding from the buffer, not the file


def test_definition_of_blocks_networks_and_imports(resnet: DocCheck, tmp_path: Path) -> None:
    # `unit = Bottleneck` leads to the block; `Stage(...)` to Stage.
    loc = definition(resnet, line_of(resnet, "network ResNet"), resnet.lines[34].index("Bottleneck") + 2)
    assert loc is not None and loc.range.start == types.Position(15, 6)
    stage = line_of(resnet, "layer1:  Stage")
    loc = definition(resnet, stage, resnet.lines[stage - 1].index("Stage") + 1)
    assert loc is not None and loc.range.start == types.Position(29, 6)
    assert definition(resnet, 1, 1) is None
    # An import found among the stock specs (the search path), from a file elsewhere.
    text = 'import "resnet.cnn"\nnetwork r = ResNet(layers = [2, 2, 2, 2], unit = BasicBlock)\n'
    check = checked(tmp_path / "mine.cnn", text)
    assert check.diagnostics == []
    imp = definition(check, 1, 10)
    assert imp is not None and imp.uri == path_to_uri(os.path.realpath(SPECS / "resnet.cnn"))
    net = definition(check, 2, 14)
    assert net is not None and net.uri == imp.uri and net.range.start == types.Position(34, 8)


def test_completion_of_kinds_blocks_and_arguments(resnet: DocCheck) -> None:
    items = {i.label: i for i in completions(resnet, 43, 5)}
    assert items["conv"].detail is not None and items["conv"].detail.startswith("conv(out, kernel")
    assert items["Bottleneck"].detail == "Bottleneck(planes, stride = …, groups = …, width = …)"
    assert items["Bottleneck"].kind == types.CompletionItemKind.Class
    line = line_of(resnet, "conv1:   conv(64")
    args = completions(resnet, line, resnet.lines[line - 1].index("conv(") + 6)
    assert [a.label for a in args][:2] == ["out", "kernel"] and "padding" in {a.label for a in args}
    assert all(a.insert_text == f"{a.label} = " for a in args)
    line = line_of(resnet, "layer1:  Stage(")
    params = completions(resnet, line, resnet.lines[line - 1].index("Stage(") + 7)
    assert [p.label for p in params] == ["unit", "planes", "blocks", "stride", "groups", "width"]
    # After `name =`: a value, where a block may go but no layer kind or argument name.
    header = line_of(resnet, "network ResNet(")
    values = completions(resnet, header, resnet.lines[header - 1].index("Bottleneck") + 1)
    assert [v.label for v in values] == ["BasicBlock", "Bottleneck", "Stage"]


def test_document_symbols(resnet: DocCheck) -> None:
    symbols = document_symbols(resnet)
    assert [(s.name, s.kind) for s in symbols] == [
        ("BasicBlock", types.SymbolKind.Class),
        ("Bottleneck", types.SymbolKind.Class),
        ("Stage", types.SymbolKind.Class),
        ("ResNet", types.SymbolKind.Module),
    ]
    assert symbols[3].range.start.line == 34 and symbols[3].range.end.line == 52


def test_formatting_is_cnnspec_fmt_and_refuses_a_file_that_does_not_parse(tmp_path: Path) -> None:
    docs = Documents()
    messy = "network N {\n  input:3 x 8 x 8\n  conv(4,3,padding=1)\n}\n"
    doc = docs.open(path_to_uri(str(tmp_path / "n.cnn")), messy)
    edits = format_edits(doc)
    assert edits is not None and len(edits) == 1
    assert edits[0].new_text == format_source(messy, doc.path)
    assert apply_change(messy, types.TextDocumentContentChangePartial(edits[0].range, edits[0].new_text)) == (
        edits[0].new_text
    )
    doc.text = edits[0].new_text
    assert format_edits(doc) == []  # formatted already
    doc.text = "network N {\n  input: 3 x 8 x 8\n  conv(4, 3\n"
    assert format_edits(doc) is None
    assert doc.text == "network N {\n  input: 3 x 8 x 8\n  conv(4, 3\n"


def test_incremental_edits_count_utf16_columns() -> None:
    docs = Documents()
    uri = "file:///tmp/u.cnn"
    docs.open(uri, "# 🙂 x\nnetwork N {}\n")
    # The emoji takes two UTF-16 units: column 5 is just after it and its space.
    change = types.TextDocumentContentChangePartial(types.Range(types.Position(0, 5), types.Position(0, 6)), "y")
    doc = docs.change(uri, [change], 2)
    assert doc is not None and doc.text == "# 🙂 y\nnetwork N {}\n"
    assert to_span_position(["# 🙂 y"], types.Position(0, 5)) == (1, 5)


def test_each_server_has_its_own_documents() -> None:
    a, b = make_server(), make_server()
    a.documents.open("file:///tmp/a.cnn", "network A {}\n")
    assert b.documents.get("file:///tmp/a.cnn") is None
    assert a.checks is not b.checks and a.parsed is not b.parsed


def _use_every_feature(check: DocCheck, doc: Document, lines: range) -> None:
    """Hover, completion and definition on the given lines, symbols, the LSP diagnostics and formatting:
    each must answer without raising."""
    for line in lines:
        hover_text(check, line, 5)
        completions(check, line, 9)
        definition(check, line, 7)
    document_symbols(check)
    to_lsp(check)
    format_edits(doc)


def test_no_fuzzed_text_makes_the_check_fail() -> None:
    """A bug in the checker becomes an `internal` diagnostic (the server lives on): none may appear."""
    from tests.fuzz.mutate import mutate, random_spec, stock_texts

    rng = random.Random(11)
    stock = stock_texts()
    server = make_server()
    doc = server.documents.open(path_to_uri(str(SPECS / "fuzzed.cnn")), "")
    for _ in range(60):
        doc.text = mutate(rng.choice(stock)[1], rng) if rng.random() < 0.7 else random_spec(rng)
        check = server.recheck(doc)
        assert not [d for d in check.diagnostics if d.code == INTERNAL], doc.text
        _use_every_feature(check, doc, range(1, len(check.lines) + 1, 2))


def test_imports_are_looked_for_in_the_search_path(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "units.cnn").write_text("block Unit(c) { conv(c, 3, padding = 1) }\n")
    text = 'import "units.cnn"\nnetwork N {\n    input: 3 x 8 x 8\n    Unit(4)\n}\n'
    path = os.path.realpath(tmp_path / "main.cnn")
    missing = check_document(path, text)
    assert [d.code for d in missing.diagnostics] == ["E401"]
    found = check_document(path, text, search=[str(lib)])
    assert found.diagnostics == [] and "4×8×8" in (hover_text(found, 4, 6) or "")
    loc = definition(found, 4, 6)
    assert loc is not None and loc.uri == path_to_uri(os.path.realpath(lib / "units.cnn"))


@pytest.mark.slow
def test_hostile_specs_get_diagnostics_not_a_failure() -> None:
    """Every hostile generator of tests/fuzz/hostile.py at every size, through the server's check and
    each feature: spec diagnostics (E603, E606, E607, E608, ...), never an `internal` one."""
    from tests.fuzz.hostile import cases

    server = make_server()
    doc = server.documents.open(path_to_uri("/tmp/hostile.cnn"), "")
    for generator, size in cases():
        doc.text = generator.make(size)
        check = server.recheck(doc)
        assert not [d for d in check.diagnostics if d.code == INTERNAL], (generator.name, size)
        _use_every_feature(check, doc, range(1, min(len(check.lines), 60) + 1, 3))
