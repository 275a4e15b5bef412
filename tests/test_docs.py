"""The docs cannot drift: the figures they show and the files they name are checked against the code.

- every parameter count in a family page's "Against torchvision" table is what `cnnspec check
  --json` reports for that row's spec and `--set` options;
- every spec, benchmark, test or source path that README.md and docs/ name exists, every
  relative link leads to a file, and every `cnnspec.x.y` they name imports.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
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
