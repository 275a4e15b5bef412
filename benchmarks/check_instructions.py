"""Machine instructions per `cnnspec.check` of a spec, counted by valgrind (deterministic).

    python benchmarks/check_instructions.py [SPEC] [--calls N]

Wall time on a shared machine moves by a factor of two from minute to
minute; the instruction count does not, so it is what tells two versions
apart. The script runs the check in a child under `valgrind --tool=cachegrind`
twice, once with one call and once with N + 1, and divides the difference by
N, so interpreter start-up, imports and the parser cache's first fill drop out.
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
cnnspec.check({spec!r})
for _ in range({calls}):
    cnnspec.check({spec!r})
"""


def instructions(spec: str, calls: int) -> int:
    """Instructions valgrind counts for a child that checks spec once, then `calls` more times."""
    code = CHILD.format(root=str(ROOT), spec=spec, calls=calls)
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
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install -y valgrind", file=sys.stderr)
        return 2
    per_call = (instructions(args.spec, args.calls) - instructions(args.spec, 0)) / args.calls
    print(f"{Path(args.spec).name}: {per_call / 1e6:.1f} million instructions per check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
