"""A non-editable install: the wheel holds every package and the grammar, and works away from the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: setuptools is already here, and CI has no network beyond the registries anyway.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("cnnspec-*.whl")
    return whl


def test_the_wheel_holds_every_package_and_the_grammar(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = sorted(p.parent.relative_to(REPO).as_posix() for p in (REPO / "cnnspec").rglob("__init__.py"))
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert not missing, f"packages left out of the wheel: {missing}"
    assert "cnnspec/grammar/cnnspec.lark" in names
    stock = sorted(f"cnnspec/specs/{p.name}" for p in (REPO / "specs").glob("*.cnn"))
    assert stock and not [s for s in stock if s not in names], "stock specs left out of the wheel"


def test_the_installed_wheel_checks_and_compiles_a_spec(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    script = (
        "import cnnspec, sys; "
        "assert cnnspec.__file__.startswith(sys.argv[1]), cnnspec.__file__; "
        "print(cnnspec.compile(sys.argv[2]).__class__.__name__, cnnspec.check(sys.argv[2]).total_params)"
    )
    # Run from an empty folder with the checkout off the path, so only the installed copy can be found.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    done = subprocess.run(
        [sys.executable, "-c", script, str(target), str(REPO / "specs" / "lenet5.cnn")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["LeNet5", "61706"]

    # A user's spec elsewhere imports a stock spec by its name alone: the wheel's copy is found.
    mine = tmp_path / "mine.cnn"
    mine.write_text('import "resnet.cnn"\nnetwork Mine = ResNet(layers = [2, 2, 2, 2], unit = BasicBlock)\n')
    script = "import cnnspec, sys; print(cnnspec.check(sys.argv[1]).total_params)"
    done = subprocess.run(
        [sys.executable, "-c", script, str(mine)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["11689512"]  # torchvision's resnet18
