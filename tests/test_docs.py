"""The docs cannot drift: the figures they show and the files they name are checked against the code.

- every parameter count in a family page's "Against torchvision" table is what `cnnspec check
  --json` reports for that row's spec and `--set` options;
- every spec, benchmark, test or source path that README.md and docs/ name exists, every
  relative link leads to a file, and every `cnnspec.x.y` they name imports;
- every code block of README.md and docs/ that is meant to run runs (see `code_blocks`).

Which blocks run, and how:

- A ```python block runs. The python blocks of one page run in order in one fresh
  interpreter, one namespace, as a reader would paste them (the second block of
  extending.md uses what the first imported), in a temporary directory where `specs`
  is the repository's specs/, so that what they write is thrown away.
- A block whose lines start with `$ ` (a shell session; ```console, ``` or ```bash) runs
  each `$ cnnspec ...` command through cnnspec.cli.main in such a directory, one after
  the other. A command followed by no output lines must exit 0; the lines that follow a
  command up to the next `$` are its output, and must be what it prints (stdout and
  stderr).
- Every other ```bash, ```sh, ```console or ```shell block would be run too, so it must
  be marked.

An HTML comment on the line just above the fence (GitHub shows none) marks a block:

- `<!-- docs-test: no-run REASON -->`: not run (it installs packages, needs ImageNet or
  several machines, or shows timings that vary; the reason names what tests it instead);
- `<!-- docs-test: slow -->`: run, as a slow test (a training run, an export of ResNet-50);
- `<!-- docs-test: file NAME -->`: not run; its text is written to NAME in the directory
  before the page's commands run (README.md's `bad.cnn`).

Blocks of any other language (spec text, output, TOML, grammar) are not run.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cnnspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "families").glob("*.md")])
FAMILY_PAGES = sorted(p for p in (ROOT / "docs" / "families").glob("*.md") if p.name != "README.md")


def family_rows(page: Path) -> list[tuple[str, list[str], int, int]]:
    """(spec, --set options, parameters, torchvision's) of each row of the page's "Against torchvision" table.

    A row's first cell is `spec.cnn` with optional `--set NAME=VALUE` options, or the options
    alone, which then apply to the spec of the row above.
    """
    section = page.read_text(encoding="utf-8").split("## Against torchvision", 1)[1].split("\n## ", 1)[0]
    rows, spec = [], ""
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or not re.fullmatch(r"[\d,]+", cells[1]):
            continue
        words = shlex.split(cells[0].replace("`", ""))
        if words[0].endswith(".cnn"):
            spec, words = words[0], words[1:]
        torchvision = re.match(r"[\d,]+", cells[2])
        assert torchvision, f"{page.name}: no torchvision count in {line!r}"
        rows.append((spec, words, int(cells[1].replace(",", "")), int(torchvision[0].replace(",", ""))))
    return rows


CASES = [(page.name, *row) for page in FAMILY_PAGES for row in family_rows(page)]


def test_every_family_page_has_a_figure() -> None:
    assert {name for name, *_ in CASES} == {page.name for page in FAMILY_PAGES}


@pytest.mark.parametrize(
    ("page", "spec", "options", "params", "torchvision"), CASES, ids=[f"{c[0]}:{c[1]}{c[2]}" for c in CASES]
)
def test_family_page_parameter_count(
    page: str, spec: str, options: list[str], params: int, torchvision: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(ROOT / "specs" / spec), *options, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == params, f"{page}: {spec} {options}"
    # tests/test_families.py checks torchvision's own count; the page must show the two equal
    assert torchvision == params, f"{page}: {spec} {options}"


def named_paths() -> list[tuple[str, str]]:
    """(doc, path) for each repository path the docs name: specs/, benchmarks/, tests/, cnnspec/, grammar/."""
    pattern = re.compile(r"\b(?:specs|benchmarks|tests|cnnspec|grammar)/[\w./-]*\w")
    return sorted({(doc.name, m) for doc in DOCS for m in pattern.findall(doc.read_text(encoding="utf-8"))})


@pytest.mark.parametrize(("doc", "path"), named_paths())
def test_named_path_exists(doc: str, path: str) -> None:
    assert (ROOT / path).exists(), f"{doc} names {path}, which does not exist"


def relative_links() -> list[tuple[str, str]]:
    """(doc, target) for each Markdown link or image of the docs that is not a URL or an anchor."""
    pattern = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    links = {(str(doc.relative_to(ROOT)), m) for doc in DOCS for m in pattern.findall(doc.read_text(encoding="utf-8"))}
    return sorted((doc, target) for doc, target in links if "://" not in target)


@pytest.mark.parametrize(("doc", "target"), relative_links())
def test_relative_link_exists(doc: str, target: str) -> None:
    assert (ROOT / doc).parent.joinpath(target).exists(), f"{doc} links {target}, which does not exist"


def named_modules() -> list[tuple[str, str]]:
    """(doc, dotted name) for each `cnnspec.x.y` the docs name (a module, or an attribute of one)."""
    pattern = re.compile(r"\bcnnspec(?:\.[a-z_]\w*)+")
    found = set()
    for doc in DOCS:
        # grammar/cnnspec.lark and the like are files, not modules
        text = re.sub(r"[\w/]*cnnspec\.(?:lark|cnn|tmLanguage\.json)\b", "", doc.read_text(encoding="utf-8"))
        found |= {(doc.name, m) for m in pattern.findall(text)}
    return sorted(found)


@pytest.mark.parametrize(("doc", "name"), named_modules())
def test_named_module_exists(doc: str, name: str) -> None:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ModuleNotFoundError:
            continue
    for attribute in parts[i:]:
        assert hasattr(obj, attribute), f"{doc} names {name}, which does not exist"
        obj = getattr(obj, attribute)


@dataclass(frozen=True)
class Block:
    """A fenced code block: its page, the line of its fence, language, text and docs-test mark."""

    page: Path
    line: int
    language: str
    text: str
    mark: str  # "", "no-run", "slow" or "file NAME"

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.language in SHELLS or any(line.startswith("$ ") for line in self.text.splitlines())


SHELLS = {"bash", "sh", "console", "shell"}
_MARK = re.compile(r"<!--\s*docs-test:\s*(no-run|slow|file\s+\S+)\b.*?-->")


def code_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, each with the docs-test mark of the line above its fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(```+)\s*(\S*)", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(fence[1]))
        mark = _MARK.search(lines[i - 1]) if i else None
        blocks.append(Block(page, i + 1, fence[2], "\n".join(lines[i + 1 : end]) + "\n", mark[1] if mark else ""))
        i = end + 1
    return blocks


BLOCKS = [b for page in DOCS for b in code_blocks(page)]
RUN = [b for b in BLOCKS if b.mark in ("", "slow") and (b.language == "python" or b.is_shell)]


def _slow(blocks: list[Block]) -> list[pytest.MarkDecorator]:
    return [pytest.mark.slow] if any(b.mark == "slow" for b in blocks) else []


def _workspace(tmp_path: Path, page: Path) -> Path:
    """A directory for a page's blocks: specs/ is the repository's, and the page's `file` blocks are written."""
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    for block in code_blocks(page):
        if block.mark.startswith("file "):
            (tmp_path / block.mark.split(None, 1)[1]).write_text(block.text, encoding="utf-8")
    return tmp_path


def test_the_marks_are_known_and_every_run_block_is_found() -> None:
    for page in DOCS:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if "docs-test" in line:
                assert _MARK.search(line), f"{page.name}:{number}: unknown docs-test mark {line.strip()!r}"
    # README.md's example, the reason this test exists, is run
    assert any(b.page.name == "README.md" and "model.layer3[4].conv2" in b.text for b in RUN)


PYTHON_PAGES = sorted({b.page for b in RUN if b.language == "python"})


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(p, marks=_slow([b for b in RUN if b.page == p and b.language == "python"]), id=p.name)
        for p in PYTHON_PAGES
    ],
)
def test_python_blocks_run(page: Path, tmp_path: Path) -> None:
    blocks = [(b.where, b.line, b.text) for b in RUN if b.page == page and b.language == "python"]
    # Each block compiled with its page and line as the file name, so a traceback points into the page.
    runner = (
        "import json, sys\n"
        "namespace = {'__name__': '__main__'}\n"
        "for where, line, text in json.loads(sys.argv[1]):\n"
        "    exec(compile('\\n' * line + text, where, 'exec'), namespace)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", runner, json.dumps(blocks)],
        cwd=_workspace(tmp_path, page),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{page.name}: a python block fails:\n{result.stderr[-3000:]}"


SHELL_BLOCKS = [b for b in RUN if b.is_shell]


def _commands(block: Block) -> list[tuple[str, list[str]]]:
    """(command line, output lines shown after it) for each `$ ` line of a block."""
    found: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        elif found:
            found[-1][1].append(line)
        else:
            raise AssertionError(f"{block.where}: a line before the first `$ ` command: {line!r}")
    return found


@pytest.mark.parametrize("block", [pytest.param(b, marks=_slow([b]), id=b.where) for b in SHELL_BLOCKS])
def test_shell_blocks_run(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = _commands(block)
    assert commands, f"{block.where}: a shell block without `$ ` commands: mark it docs-test: no-run"
    monkeypatch.chdir(_workspace(tmp_path, block.page))
    for line, shown in commands:
        words = shlex.split(line, comments=True)
        assert words[0] == "cnnspec", f"{block.where}: `{line}` is not a cnnspec command: mark the block no-run"
        code = main(words[1:])
        out, err = capsys.readouterr()
        expected = "\n".join(shown).strip()
        if expected:
            assert (out + err).strip() == expected, f"{block.where}: `{line}` prints otherwise"
        else:
            assert code == 0, f"{block.where}: `{line}` exits {code}:\n{err}"
