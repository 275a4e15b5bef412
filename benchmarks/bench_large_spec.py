"""Checking time of very large specs, to show it grows linearly with the spec's size.

    python benchmarks/bench_large_spec.py [--sizes 25000,50000,100000,200000] [--repeat]

Two shapes of spec per size N (layers):
  written    N layer statements written out one per line (convolutions of
             changing width, batch norms, ReLUs, a residual every 12 lines),
             so nothing can be shared between instances: the worst case;
  repeated   the same network as one block repeated N/4 times;
  instances  N/4 instances of one block, each with its own argument (as
             EfficientNet's stochastic-depth probability grows block by
             block), so each is elaborated afresh.
Each check runs in a fresh process (`cnnspec check --json` through the real
command line), timed from launch to exit; the child reports its own peak
resident memory. The figures go to stdout as a table and as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import machine


def written(n: int) -> str:
    """A network of n layers, each on its own line, none the same as its neighbours."""
    lines = ["network Wide {", "    input: 3 x 16 x 16", "    conv(8, 3, padding = 1)"]
    done, i, cur = 1, 0, 8
    while done < n:
        if i % 4 == 3 and done + 5 <= n:
            lines.append(f"    residual {{ conv({cur}, 3, padding = 1); batchnorm; relu; conv({cur}, 1) }}")
            done += 5  # four layers and the add
        else:
            cur = 8 + i % 8
            lines.append(f"    conv({cur}, {1 + 2 * (i % 2)}, padding = {i % 2})")
            lines.append("    relu")
            done += 2
        i += 1
    lines.append("}")
    return "\n".join(lines) + "\n"


def repeated(n: int) -> str:
    """The same size as one block repeated."""
    return (
        "block Unit(c) { conv(c, 3, padding = 1); batchnorm; relu; conv(c, 1) }\n"
        f"network Deep {{\n    input: 3 x 16 x 16\n    conv(8, 1)\n    Unit(8) * {max(1, n // 4)}\n}}\n"
    )


def instances(n: int) -> str:
    """The same size as block instances that differ in an argument, made by a `for` loop."""
    return (
        "block Unit(c, p) { conv(c, 3, padding = 1); batchnorm; dropout(p); conv(c, 1) }\n"
        f"network Distinct {{\n    input: 3 x 16 x 16\n    conv(8, 1)\n"
        f"    for i in range({max(1, n // 4)}) {{ Unit(8, i / {n}) }}\n}}\n"
    )


#: The child: `cnnspec check --json` through the real command line, then its own peak RSS (KiB) on stderr.
_CHILD = """
import sys
from cnnspec.cli import main
try:
    code = main(["check", sys.argv[1], "--json"])
finally:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
    print("maxrss_kib", hwm.split()[1], file=sys.stderr)
sys.exit(code)
"""


def run(text: str, folder: Path) -> dict[str, float]:
    """Check one spec in a fresh process: wall seconds, peak RSS, layers counted by the checker."""
    path = folder / "big.cnn"
    path.write_text(text, encoding="utf-8")
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"check failed:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    peak = int(done.stderr.strip().splitlines()[-1].split()[-1])
    return {
        "layers": len(report["layers"]),
        "lines": text.count("\n"),
        "seconds": wall,
        "peak_rss_mib": peak / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="25000,50000,100000,200000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[dict[str, object]] = []
    print(f"machine: {machine()}")
    print(f"{'spec':<10} {'layers':>8} {'lines':>8} {'seconds':>8} {'us/layer':>9} {'peak RSS':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, make in (("written", written), ("repeated", repeated), ("instances", instances)):
            for n in sizes:
                r = run(make(n), Path(tmp))
                r["spec"] = kind
                results.append(r)
                per = 1e6 * r["seconds"] / r["layers"]
                print(
                    f"{kind:<10} {r['layers']:>8,} {r['lines']:>8,} {r['seconds']:>8.2f} {per:>9.1f} "
                    f"{r['peak_rss_mib']:>8.0f} MiB",
                    flush=True,
                )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
