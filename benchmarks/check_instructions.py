"""Machine instructions per `cnnspec.check` of a spec, counted by valgrind (deterministic).

    python benchmarks/check_instructions.py [SPEC] [--calls N] [--tree DIR] [--rows] [--phase PHASE]

Wall time on a shared machine moves by a factor of two from minute to
minute; the instruction count does not, so it is what tells two versions
apart. The script runs the check in a child under `valgrind --tool=cachegrind`
twice, once with one call and once with N + 1, and divides the difference by
N, so interpreter start-up, imports and the parser cache's first fill drop out.
--tree counts another checkout's cnnspec (a `git worktree` of an older commit).
--phase counts one stage of the check alone, on the spec loaded once: load,
elaborate, params, macs, saved (the three passes), w006 or report.
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
import cnnspec.syntax.parser
assert cnnspec.__file__.startswith({root!r}), cnnspec.__file__
# The checkout's own grammar: an editable install resolves the package's grammar resource to
# the installed tree, whichever checkout sys.path puts first.
cnnspec.syntax.parser.grammar_text = lambda: open({root!r} + "/grammar/cnnspec.lark", encoding="utf-8").read()
{setup}
check()
for _ in range({calls}):
    check()
"""

WHOLE = """
def check():
    report = cnnspec.check({spec!r})
    if {rows!r}:
        report.layers, report.groups, report.folds, report.stages, report.table
"""

#: One stage of a check, on the spec loaded, elaborated and analysed once (the cycle
#: collector off, as the check has it): what `check()` runs for each --phase.
PHASES = {
    "load": "load(SPEC, SourceMap())",
    "elaborate": "Elaborator(program, Diagnostics(sources)).network(name, {})",
    "params": "count_params(graph)",
    "macs": "count_macs(graph)",
    "saved": "saved_tensors(graph)",
    "w006": "_rename_warnings(graph, Diagnostics(sources))",
    "report": "build_report(graph, analysis, [])",
}

PHASE = """
import gc
from cnnspec.api import _rename_warnings
from cnnspec.diagnostics import Diagnostics
from cnnspec.semantics.elaborate import Elaborator, select_network
from cnnspec.syntax.loader import load
from cnnspec.analysis import analyze
from cnnspec.analysis.macs import count_macs
from cnnspec.analysis.memory import saved_tensors
from cnnspec.analysis.params import count_params
from cnnspec.views.report import build_report
from cnnspec.syntax.source import SourceMap

gc.disable()
SPEC = {spec!r}
sources = SourceMap()
program = load(SPEC, sources)
name = select_network(program, None, Diagnostics(sources))
graph = Elaborator(program, Diagnostics(sources)).network(name, {{}})
analysis = analyze(graph)

def check():
    {body}
"""


def instructions(spec: str, calls: int, tree: Path = ROOT, rows: bool = False, phase: str | None = None) -> int:
    """Instructions valgrind counts for a child that checks spec once, then `calls` more times
    (reading every row of the report after each check when rows; running only that stage of
    the check when phase)."""
    setup = WHOLE.format(spec=spec, rows=rows) if phase is None else PHASE.format(spec=spec, body=PHASES[phase])
    code = CHILD.format(root=str(tree), setup=setup, calls=calls)
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
    parser.add_argument("--phase", choices=sorted(PHASES), help="count one stage of the check alone")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install -y valgrind", file=sys.stderr)
        return 2
    tree = args.tree.resolve()
    counts = [instructions(args.spec, n, tree, args.rows, args.phase) for n in (args.calls, 0)]
    per_call = (counts[0] - counts[1]) / args.calls / 1e6
    if args.phase:
        print(f"{Path(args.spec).name}: {per_call:.2f} million instructions in the {args.phase} stage of a check")
    else:
        what = "check, every row read" if args.rows else "check"
        print(f"{Path(args.spec).name}: {per_call:.1f} million instructions per {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
