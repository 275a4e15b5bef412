"""Machine instructions per `cnnspec.check` of a spec, counted by valgrind (deterministic).

    python benchmarks/check_instructions.py [SPEC] [--calls N] [--tree DIR] [--rows]

Wall time on a shared machine moves by a factor of two from minute to
minute; the instruction count does not, so it is what tells two versions
apart. The script runs the check in a child under `valgrind --tool=cachegrind`
twice, once with one call and once with N + 1, and divides the difference by
N, so interpreter start-up, imports and the parser cache's first fill drop out.
--tree counts another checkout's cnnspec (a `git worktree` of an older commit).
Needs valgrind (`apt-get install -y valgrind`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys
sys.path.insert(0, {root!r})
import cnnspec
assert cnnspec.__file__.startswith({root!r}), cnnspec.__file__

def check():
    report = cnnspec.check({spec!r})
    if {rows!r}:
        report.layers, report.groups, report.folds, report.stages, report.table

check()
for _ in range({calls}):
    check()
"""


def instructions(spec: str, calls: int, tree: Path = ROOT, rows: bool = False) -> int:
    """Instructions valgrind counts for a child that checks spec once, then `calls` more times
    (reading every row of the report after each check when rows)."""
    code = CHILD.format(root=str(tree), spec=spec, calls=calls, rows=rows)
    env = dict(os.environ, PYTHONHASHSEED="0")
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    run = subprocess.run([*valgrind, sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    match = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> int:
    """Print the instructions per check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "resnet152.cnn"))
    parser.add_argument("--calls", type=int, default=5, help="checks counted (default 5)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose cnnspec to count (default: this)")
    parser.add_argument("--rows", action="store_true", help="also read every row list of each report")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install -y valgrind", file=sys.stderr)
        return 2
    tree = args.tree.resolve()
    counts = [instructions(args.spec, n, tree, args.rows) for n in (args.calls, 0)]
    what = "check, every row read" if args.rows else "check"
    print(f"{Path(args.spec).name}: {(counts[0] - counts[1]) / args.calls / 1e6:.1f} million instructions per {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
