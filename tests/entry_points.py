"""Entry points as pyproject.toml declares them, visible to a subprocess without reinstalling cnnspec.

The editable install's metadata holds the entry points of the last `pip install -e .`; a test of
what pyproject.toml declares now puts a small dist-info folder holding them on PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent


def declared(group: str) -> dict[str, str]:
    """The entry points pyproject.toml declares in one group (name -> "module:attr")."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return dict(project.get("entry-points", {}).get(group, {}))


def env_with_entry_points(folder: Path, group: str) -> dict[str, str]:
    """os.environ with PYTHONPATH showing the checkout and a dist-info of pyproject's `group` entry points."""
    info = folder / "cnnspec_checkout_entry_points-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cnnspec-checkout-entry-points\nVersion: 0\n")
    lines = [f"[{group}]", *(f"{k} = {v}" for k, v in declared(group).items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(folder), *filter(None, [env.get("PYTHONPATH")])])
    return env
