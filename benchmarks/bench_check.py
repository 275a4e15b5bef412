"""The checker's performance budget: what a user of `cnnspec check` feels.

    python benchmarks/bench_check.py [--runs 9] [--sizes 250,500,1000,2000]

Figures, each the median of --runs runs, against the budget of issue 20:
  1. in-process `cnnspec.check("specs/resnet152.cnn")`            at most 20 ms (as every check after
     the first: `resnet.cnn`, which it imports, read from the parse cache; the figure without the
     cache follows it)
  2. a spec of N distinct blocks (generated here), in process        1,000 blocks at most 1 s, linear in N
  3. `cnnspec check specs/resnet152.cnn` as a fresh process          at most 0.5 s (bytecode and parse
     cache written, as after a first run; then without the cache)
  4. `check`, `diagram` and `layers` leave torch unimported          yes
then the import time of each top-level module (`python -X importtime`), and the machine.
The machine's speed is whatever it is: a shared machine gives noisy figures, rerun it. So that
a slow minute shows as such, each in-process check alternates with a fixed piece of plain
Python (`reference`, about as much interpreted work as a tenth of a check): when the machine
slows down, both do, and their ratio stays. The parse cache (cnnspec.syntax.cache) is a
temporary folder of this run's, filled by its first check, so the user's own is not read.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESNET152 = ROOT / "specs" / "resnet152.cnn"

#: Third-party packages whose import time is reported next to cnnspec's modules.
THIRD_PARTY = ("lark", "pydantic", "networkx", "graphviz", "torch")


def machine() -> str:
    """CPU model, cores, Python and the versions of the packages that the figures depend on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    versions = []
    for package in ("cnnspec", "lark", "pydantic", "networkx", "torch"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, load average {load}; Python {platform.python_version()}; " + ", ".join(
        versions
    )


def median_seconds(call: Callable[[], object], runs: int) -> float:
    """Median wall seconds of `runs` calls, after one untimed call."""
    call()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def reference() -> int:
    """A fixed piece of plain Python (objects, dicts, calls): the yardstick of the machine's speed."""
    rows = [{"i": i, "name": f"n{i}", "shape": (i % 7, i % 5)} for i in range(3000)]
    return sum(len(r["name"]) + r["shape"][0] for r in rows if r["i"] % 3)


def alternated_ms(call: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """Median milliseconds of call and of reference(), timed alternately, and the median of their ratios."""
    call(), reference()
    pairs = []
    for _ in range(runs):
        t = time.perf_counter()
        reference()
        r = time.perf_counter() - t
        t = time.perf_counter()
        call()
        pairs.append((time.perf_counter() - t, r))
    return (
        statistics.median(c for c, _ in pairs) * 1e3,
        statistics.median(r for _, r in pairs) * 1e3,
        statistics.median(c / r for c, r in pairs),
    )


def blocks_spec(n: int) -> str:
    """A network of n residual blocks, written out one per line, each with its own arguments.

    No two consecutive calls are alike (the width alternates, the dropout probability grows),
    so every block is elaborated afresh: the worst case for a spec of this size.
    """
    lines = [
        "block Unit(c, p) {",
        "    residual { conv(c, 3, padding = 1); batchnorm; relu; dropout(p); conv(c, 3, padding = 1); batchnorm }"
        " shortcut proj { conv(c, 1); batchnorm }",
        "    relu",
        "}",
        "network Blocks {",
        "    input: 3 x 32 x 32",
        "    conv(16, 3, padding = 1)",
    ]
    lines += [f"    Unit({16 + 8 * (i % 2)}, {i / n:.6f})" for i in range(n)]
    lines += ["    adaptive_avgpool(1)", "    flatten", "    linear(10)", "}"]
    return "\n".join(lines) + "\n"


#: A child that runs one CLI command and reports on stderr whether torch got imported.
_TORCH_PROBE = """
import sys
from cnnspec.cli import main
code = main(sys.argv[1:])
print("torch imported:", "torch" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


def imports_torch(args: list[str]) -> bool:
    """Whether `cnnspec ARGS` imports torch, run in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", _TORCH_PROBE, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"cnnspec {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stderr.strip().splitlines()[-1] == "torch imported: True"


def import_times(runs: int) -> tuple[dict[str, float], float]:
    """Median milliseconds of import per cnnspec stage and per third-party package, and the CLI's total.

    One interpreter imports what the CLI needs, then the backends, as a user's process does. A stage
    (cnnspec.syntax, cnnspec.ir, cnnspec.backends.fx, ...) is charged the time its own modules take to
    run (`-X importtime`'s self column, summed); a third-party package its whole import (cumulative).
    """
    code = "import cnnspec.cli; import cnnspec.backends.diagram, cnnspec.backends.fx, cnnspec.backends.export"
    samples: dict[str, list[float]] = {}
    totals = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
        )
        ms: dict[str, float] = {}
        for line in done.stderr.splitlines():
            # "import time:      self [us] | cumulative | imported package", nesting shown by indentation;
            # a line comes when its import ends, so a module's nested imports are listed before it
            parts = line.removeprefix("import time:").split("|")
            if len(parts) != 3 or not parts[0].strip().isdigit():
                continue
            own, cumulative, name = int(parts[0]) / 1e3, int(parts[1]) / 1e3, parts[2].rstrip()
            nested, name = name != name.lstrip() and name[1:] != name[1:].lstrip(), name.strip()
            if name == "cnnspec.cli" and not nested:
                totals.append(cumulative)  # its packages' lines come first, nested in it
            dotted = name.split(".")
            if dotted[0] == "cnnspec":
                stage = ".".join(dotted[:3] if dotted[1:2] == ["backends"] else dotted[:2])
                ms[stage] = ms.get(stage, 0.0) + own
            elif name in THIRD_PARTY:
                ms[name] = cumulative
        for name, value in ms.items():
            samples.setdefault(name, []).append(value)
    return {name: statistics.median(v) for name, v in samples.items()}, statistics.median(totals)


def main() -> None:
    """Measure every figure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per figure; the median is reported")
    parser.add_argument("--sizes", default="250,500,1000,2000", help="block counts of the generated specs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        os.environ["CNNSPEC_CACHE_DIR"] = cache
        rows = measure(args)
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'budget':>7}  {'measured':>9}  ok?")
    for figure, budget, measured, ok in rows:
        print(f"{figure:<{width}}  {budget:>7}  {measured:>9}  {'yes' if ok else 'NO'}")

    stages, cli_total = import_times(max(3, args.runs // 3))
    print("\nimport time, ms: a cnnspec stage's own modules; a third-party package whole")
    for name in sorted(stages, key=lambda name: (not name.startswith("cnnspec"), name)):
        print(f"  {name:<28} {stages[name]:8.1f}")
    for name in THIRD_PARTY:
        if name not in stages:
            print(f"  {name:<28} {'not imported':>12}")
    print(f"  {'import cnnspec.cli in all':<28} {cli_total:8.1f}")
    print(f"\nmedians of {args.runs} runs; machine: {machine()}")


def measure(args: argparse.Namespace) -> list[tuple[str, str, str, bool]]:
    """The figures' rows: (figure, budget, measured, within the budget)."""
    import cnnspec

    rows: list[tuple[str, str, str, bool]] = []
    check_ms, reference_ms, ratio = alternated_ms(lambda: cnnspec.check(RESNET152), args.runs)
    rows.append(('cnnspec.check("specs/resnet152.cnn")', "20 ms", f"{check_ms:.1f} ms", check_ms <= 20))
    ref = f"  alternated with the reference piece of Python (the check takes {ratio:.1f}x its time)"
    rows.append((ref, "", f"{reference_ms:.2f} ms", True))
    cache = os.environ["CNNSPEC_CACHE_DIR"]
    os.environ["CNNSPEC_CACHE_DIR"] = ""
    uncached_ms, _, ratio = alternated_ms(lambda: cnnspec.check(RESNET152), args.runs)
    os.environ["CNNSPEC_CACHE_DIR"] = cache
    rows.append((f"  the same, parse cache off ({ratio:.1f}x the reference)", "", f"{uncached_ms:.1f} ms", True))

    # Linear growth is judged on the time per block in units of the reference, timed alternately as
    # above: the machine's slow and fast minutes would otherwise make one size look slower than another.
    per_block = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"blocks{n}.cnn"
            path.write_text(blocks_spec(n), encoding="utf-8")
            ms, _, ratio = alternated_ms(lambda path=path: cnnspec.check(path), max(3, args.runs // 3))
            per_block.append(ratio / n)
            budget = "1 s" if n == 1000 else ""
            rows.append(
                (
                    f"cnnspec.check of {n:,} blocks ({ms / n * 1e3:.0f} us per block)",
                    budget,
                    f"{ms:.0f} ms",
                    ms <= 1000 if n == 1000 else True,
                )
            )
    spread = max(per_block) / min(per_block)
    what = "  linear: largest / smallest time per block, in units of the reference"
    rows.append((what, "1.5", f"{spread:.2f}", spread <= 1.5))

    # A user's second run finds the bytecode its first run wrote; PYTHONDONTWRITEBYTECODE (set in some
    # sandboxes and CI images) would make every start compile cnnspec from source, so it is left out.
    cold = [sys.executable, "-m", "cnnspec", "check", str(RESNET152)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cold, check=True, capture_output=True, cwd=ROOT, env=env)  # writes the bytecode
    cold_s = median_seconds(
        lambda: subprocess.run(cold, check=True, capture_output=True, cwd=ROOT, env=env), args.runs
    )
    rows.append(("cnnspec check specs/resnet152.cnn, fresh process", "0.5 s", f"{cold_s:.2f} s", cold_s <= 0.5))
    off = {**env, "CNNSPEC_CACHE_DIR": ""}
    cold_off_s = median_seconds(
        lambda: subprocess.run(cold, check=True, capture_output=True, cwd=ROOT, env=off), args.runs
    )
    rows.append(("  the same, parse cache off", "", f"{cold_off_s:.2f} s", True))

    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "check": ["check", str(RESNET152)],
            "diagram": ["diagram", str(RESNET152), "-o", str(Path(tmp) / "r152.dot")],
            "layers": ["layers"],
        }
        for name, command in commands.items():
            torch = imports_torch(command)
            rows.append((f"cnnspec {name} imports torch", "no", "yes" if torch else "no", not torch))

    return rows


if __name__ == "__main__":
    main()
