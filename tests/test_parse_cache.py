"""Imported files' ASTs kept on disk (cnnspec.syntax.cache): what is kept, when it is parsed again,
and that a damaged, foreign or unsafe cache never changes a check's result."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from support import SPECS, run_cli

import cnnspec
from cnnspec.diagnostics import SpecError
from cnnspec.syntax.cache import CACHE_VARIABLE, ParsedOnDisk, cache_dir
from cnnspec.syntax.parser import parse

LIB = """\
block Unit(width) {
    conv(width, 3, padding = 1)
    relu
}
"""

MAIN = """\
import "lib.cnn"
network net {
    input: 3 x 32 x 32
    Unit(8)
    Unit(16)
}
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of the test's own (not yet made), and a spec importing lib.cnn, as the working directory."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_VARIABLE, str(folder))
    work = tmp_path / "work"
    work.mkdir()
    (work / "lib.cnn").write_text(LIB, encoding="utf-8")
    (work / "main.cnn").write_text(MAIN, encoding="utf-8")
    monkeypatch.chdir(work)
    return folder


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


def _read(entry: Path) -> tuple[object, object]:
    """An entry's stamp and module: two pickles, one after the other."""
    with entry.open("rb") as f:
        return pickle.load(f), pickle.load(f)


def _write(entry: Path, stamp: object, module: object) -> None:
    entry.write_bytes(pickle.dumps(stamp) + pickle.dumps(module))


def test_imported_files_are_kept_and_the_main_file_is_not(cache: Path) -> None:
    report = cnnspec.check("main.cnn")
    assert report.total_params == (3 * 9 * 8 + 8) + (8 * 9 * 16 + 16)
    (entry,) = _entries(cache)
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    _, module = _read(entry)
    assert module == parse(LIB, "lib.cnn")  # spans name the file as the check shows it
    assert cnnspec.check("main.cnn").model_dump_json() == report.model_dump_json()
    assert _entries(cache) == [entry]


def test_every_stock_spec_checks_the_same_from_a_warm_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, "")
    specs = sorted(SPECS.glob("*.cnn"))
    expected = [_result(s) for s in specs]
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "cache"))
    for _ in ("filling it", "reading it"):
        assert [_result(s) for s in specs] == expected
    assert len(_entries(tmp_path / "cache")) == 7  # resnet, vgg, vit, convnext, densenet, efficientnet, swin


def _result(spec: Path) -> str:
    try:
        return cnnspec.check(spec).model_dump_json()
    except SpecError as e:  # the family files, whose networks need arguments
        return e.render()


def test_an_imported_file_changed_since_is_parsed_again(cache: Path) -> None:
    cnnspec.check("main.cnn")
    Path("lib.cnn").write_text(LIB.replace("width, 3", "width, 5").replace("padding = 1", "padding = 2"))
    assert cnnspec.check("main.cnn").total_params == (3 * 25 * 8 + 8) + (8 * 25 * 16 + 16)
    assert len(_entries(cache)) == 1  # replaced, not added to


def test_a_syntax_error_in_an_imported_file_is_reported_at_every_check_and_never_kept(cache: Path) -> None:
    Path("lib.cnn").write_text(LIB.replace("relu", "relu )"), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(SpecError) as e:
            cnnspec.check("main.cnn")
        assert "lib.cnn:3:10" in e.value.render()
    assert _entries(cache) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda stamp: b"",
        lambda stamp: b"not a pickle",
        lambda stamp: pickle.dumps("another stamp") + pickle.dumps("a string, not a module"),
        lambda stamp: pickle.dumps((stamp, "a stamp and a module in one tuple")),
        lambda stamp: pickle.dumps(stamp) + pickle.dumps("the right stamp, then not a module"),
        lambda stamp: pickle.dumps(stamp),
    ],
    ids=["empty", "garbage", "foreign", "other-layout", "not-a-module", "cut-short"],
)
def test_a_damaged_or_foreign_entry_is_a_miss_and_is_replaced(cache: Path, damage: Callable[[object], bytes]) -> None:
    expected = cnnspec.check("main.cnn").model_dump_json()
    (entry,) = _entries(cache)
    entry.write_bytes(damage(_read(entry)[0]))
    assert cnnspec.check("main.cnn").model_dump_json() == expected
    assert _read(entry)[1] == parse(LIB, "lib.cnn")


def test_a_file_whose_path_is_not_utf8_is_kept_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its name reaches Python with a lone surrogate, which plain UTF-8 cannot encode."""
    folder = tmp_path / os.fsdecode(b"d\xff")
    folder.mkdir()
    (folder / "lib.cnn").write_text(LIB, encoding="utf-8")
    (folder / "main.cnn").write_text(MAIN, encoding="utf-8")
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert cnnspec.check(folder / "main.cnn").total_params == (3 * 9 * 8 + 8) + (8 * 9 * 16 + 16)
    assert len(_entries(tmp_path / "cache")) == 1


def test_an_entry_is_used_while_its_stamp_matches_and_only_then(cache: Path) -> None:
    """The stamp is all that stands between an entry and the check: an entry holding another AST
    under the right stamp is believed (which shows kept modules are what checks read), and the
    same entry is ignored once the file's text is another."""
    cnnspec.check("main.cnn")
    (entry,) = _entries(cache)
    stamp, _ = _read(entry)
    five = parse(LIB.replace("width, 3", "width, 5").replace("padding = 1", "padding = 2"), "lib.cnn")
    _write(entry, stamp, five)
    assert cnnspec.check("main.cnn").total_params == (3 * 25 * 8 + 8) + (8 * 25 * 16 + 16)
    _write(entry, stamp, five)
    Path("lib.cnn").write_text(LIB + "\n", encoding="utf-8")  # the text changed: the stamp is another
    assert cnnspec.check("main.cnn").total_params == (3 * 9 * 8 + 8) + (8 * 9 * 16 + 16)


def test_a_folder_others_can_write_to_is_neither_read_nor_written(cache: Path, tmp_path: Path) -> None:
    """An entry is a pickle: reading one runs code, so one planted by another user must never be read."""
    cnnspec.check("main.cnn")
    (entry,) = _entries(cache)
    planted = tmp_path / "planted"
    entry.write_bytes(pickle.dumps(_Planted(str(planted))))
    os.chmod(cache, 0o777)
    assert cnnspec.check("main.cnn").total_params == (3 * 9 * 8 + 8) + (8 * 9 * 16 + 16)
    assert not planted.exists()
    assert ParsedOnDisk.from_environment() is None
    os.chmod(cache, 0o700)  # its owner's again: now it is read, and the planted entry runs
    reader = ParsedOnDisk.from_environment()
    assert reader is not None and reader.get(("lib.cnn", LIB)) is None
    assert planted.read_text(encoding="utf-8") == "ran"


class _Planted:
    """Unpickling one creates a file: what a hostile entry could do."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_plant, (self.path,))


def _plant(path: str) -> None:
    Path(path).write_text("ran", encoding="utf-8")


def test_a_cache_folder_that_cannot_be_made_leaves_checks_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv(CACHE_VARIABLE, str(blocker / "cache"))
    assert cnnspec.check(SPECS / "resnet18.cnn").total_params == 11_689_512


def test_an_empty_variable_turns_the_cache_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_VARIABLE, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cnnspec.check(SPECS / "resnet18.cnn")
    assert cache_dir() is None
    assert list(tmp_path.iterdir()) == []


def test_the_default_folder_follows_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_VARIABLE)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "cnnspec" / "parsed-1"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "cnnspec" / "parsed-1"
    cnnspec.check(SPECS / "resnet18.cnn")
    assert len(list((tmp_path / "xdg" / "cnnspec" / "parsed-1").iterdir())) == 1


def test_an_imported_file_nested_to_the_limit_checks_the_same_kept_or_not(cache: Path) -> None:
    """Pickling and unpickling an AST recurse with its depth: a file at the nesting limit is kept
    and read back like any other (were one too deep to pickle, it would only go unkept)."""
    deep = "-" * 190 + "8"  # 190 nested negations: 8
    Path("lib.cnn").write_text(LIB.replace("conv(width", f"conv(width + {deep} - 8"), encoding="utf-8")
    first = cnnspec.check("main.cnn")
    assert first.total_params == (3 * 9 * 8 + 8) + (8 * 9 * 16 + 16)
    assert len(_entries(cache)) == 1
    assert cnnspec.check("main.cnn").model_dump_json() == first.model_dump_json()


def test_the_command_line_fills_and_reads_the_same_cache(cache: Path) -> None:
    first = run_cli("check", "main.cnn", cwd=Path.cwd())
    assert first.rc == 0, first.both
    assert len(_entries(cache)) == 1
    second = run_cli("check", "main.cnn", cwd=Path.cwd())
    assert second.out == first.out
