"""The package's layout is its pipeline: each stage imports only the stages before it.

syntax → (lint, semantics) → ir → analysis → views → backends, with the layer
table (layers/) and diagnostics/ beneath them all; api, cli, commands/ and
train/ sit on top and may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cnnspec"

BASE = {"diagnostics", "syntax"}
#: What each stage may import, besides itself.
ALLOWED: dict[str, set[str]] = {
    "diagnostics": {"syntax"},  # spans and the source files of a check (syntax/source.py)
    "syntax": {"diagnostics"},
    "layers": BASE,
    "lint": BASE | {"layers"},
    "ir": BASE | {"layers"},
    "semantics": BASE | {"layers", "ir"},
    "analysis": BASE | {"layers", "ir"},
    "views": BASE | {"layers", "ir", "analysis"},
    "backends": BASE | {"layers", "ir", "analysis", "views"},
}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnnspec."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cnnspec.")}
    return found


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_a_stage_imports_only_the_stages_before_it(stage: str) -> None:
    files = sorted((PACKAGE / stage).rglob("*.py")) or [PACKAGE / f"{stage}.py"]
    assert files[0].exists(), f"no stage {stage}"
    wrong = [
        f"{f.relative_to(PACKAGE.parent)} imports {m}"
        for f in files
        for m in sorted(_imports(f))
        if _stage(m) not in ALLOWED[stage] | {stage}
    ]
    assert not wrong, wrong


def test_diagnostics_read_only_the_source_positions_of_syntax() -> None:
    modules = {m for f in (PACKAGE / "diagnostics").rglob("*.py") for m in _imports(f)}
    assert {m for m in modules if _stage(m) == "syntax"} <= {"cnnspec.syntax.source"}
