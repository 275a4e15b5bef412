"""Where imports are found: beside the importing file, then --path, then CNNSPEC_PATH, then the stock specs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from support import SPECS

import cnnspec
from cnnspec import SpecError, cli
from cnnspec.syntax.loader import stock_specs

#: torchvision's resnet18 (the stock resnet.cnn with basic blocks).
RESNET18_PARAMS = 11_689_512
MINE = 'import "resnet.cnn"\nnetwork Mine = ResNet(layers = [2, 2, 2, 2], unit = BasicBlock)\n'


def _blocks(folder: Path, channels: int) -> Path:
    """blocks.cnn in folder, with a block whose conv width tells which copy was read."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "blocks.cnn"
    path.write_text(f"block B() {{\n    conv({channels}, 3)\n}}\n")
    return path


def _user(folder: Path) -> Path:
    """A user's spec in folder importing blocks.cnn."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "main.cnn"
    path.write_text('import "blocks.cnn"\nnetwork N {\n    input: 3 x 8 x 8\n    B()\n}\n')
    return path


def _width(report: Any) -> int:
    return report.output_shape[0]


def test_the_stock_specs_are_found_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 23: `import "resnet.cnn"` in a user's file away from specs/ failed with "no such file"."""
    mine = tmp_path / "mine.cnn"
    mine.write_text(MINE)
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "resnet.cnn").exists()
    assert cnnspec.check(mine).total_params == RESNET18_PARAMS
    assert cnnspec.check(MINE).total_params == RESNET18_PARAMS  # spec text: beside is the working directory
    assert stock_specs() == SPECS.resolve()


def test_a_file_beside_the_importer_shadows_the_stock_one(tmp_path: Path) -> None:
    (tmp_path / "resnet.cnn").write_text("block Local() {\n    conv(5, 1)\n}\n")
    mine = tmp_path / "mine.cnn"
    mine.write_text('import "resnet.cnn"\nnetwork N {\n    input: 3 x 8 x 8\n    Local()\n}\n')
    assert _width(cnnspec.check(mine)) == 5
    # The stock ResNet is not visible: the local resnet.cnn was read instead.
    mine.write_text(MINE)
    with pytest.raises(SpecError, match="ResNet"):
        cnnspec.check(mine)


def test_path_is_searched_after_the_importing_file_and_in_order(tmp_path: Path) -> None:
    main = _user(tmp_path / "proj")
    first, second = tmp_path / "first", tmp_path / "second"
    _blocks(first, 7)
    _blocks(second, 9)
    with pytest.raises(SpecError, match="no such file"):
        cnnspec.check(main)
    assert _width(cnnspec.check(main, path=[first, second])) == 7
    assert _width(cnnspec.check(main, path=[str(second), str(first)])) == 9
    assert _width(cnnspec.check(main, path=str(second))) == 9  # one directory alone
    assert cnnspec.compile(main, path=[second])(torch.zeros(1, 3, 8, 8)).shape[1] == 9
    _blocks(tmp_path / "proj", 4)  # beside the importer comes first
    assert _width(cnnspec.check(main, path=[first])) == 4


def test_the_command_line_takes_path_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    main = _user(tmp_path / "proj")
    _blocks(tmp_path / "lib", 6)
    monkeypatch.chdir(tmp_path)
    for command in (["check"], ["compile", "-o", "m.onnx"], ["diagram", "-o", "m.dot"]):
        assert cli.main([*command, str(main)]) == 1
        assert 'cannot import "blocks.cnn": no such file' in capsys.readouterr().err
    assert cli.main(["check", str(main), "--path", "elsewhere", "--path", "lib", "--json"]) == 0
    assert '"output_shape": [\n    6,' in capsys.readouterr().out
    assert cli.main(["diagram", str(main), "--path", "lib", "-o", "m.dot"]) == 0
    assert "conv" in (tmp_path / "m.dot").read_text()


def test_cnnspec_path_comes_after_path_and_before_the_stock_specs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = _user(tmp_path / "proj")
    env_a, env_b, given = _blocks(tmp_path / "a", 2).parent, _blocks(tmp_path / "b", 3).parent, tmp_path / "given"
    monkeypatch.setenv("CNNSPEC_PATH", os.pathsep.join(["", str(tmp_path / "none"), str(env_a), str(env_b)]))
    assert _width(cnnspec.check(main)) == 2
    _blocks(given, 8)
    assert _width(cnnspec.check(main, path=[given])) == 8
    # A stock spec's name in CNNSPEC_PATH wins over the stock one.
    (env_a / "resnet.cnn").write_text("block Local() {\n    conv(5, 1)\n}\n")
    main.write_text('import "resnet.cnn"\nnetwork N {\n    input: 3 x 8 x 8\n    Local()\n}\n')
    assert _width(cnnspec.check(main)) == 5


def test_a_missing_import_lists_every_place_looked_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main = _user(tmp_path / "proj")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # every place shown in full: none lies below the working directory
    monkeypatch.setenv("CNNSPEC_PATH", str(tmp_path / "env"))
    with pytest.raises(SpecError) as e:
        cnnspec.check(main, path=[tmp_path / "lib"])
    (d,) = e.value.diagnostics
    assert d.code == "E401" and d.message == 'cannot import "blocks.cnn": no such file'
    looked = [n.message for n in d.notes]
    stock = stock_specs()
    assert stock is not None
    expected = [
        (tmp_path / "proj" / "blocks.cnn", "beside the importing file"),
        (tmp_path / "lib" / "blocks.cnn", "--path"),
        (tmp_path / "env" / "blocks.cnn", "CNNSPEC_PATH"),
        (stock / "blocks.cnn", "the stock specs"),
    ]
    assert looked == [f"looked for {os.path.realpath(p)} ({why})" for p, why in expected]
