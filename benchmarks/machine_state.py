"""How much this machine's single-thread speed moves, next to cnnspec.check's time.

    python benchmarks/machine_state.py [--calls N]

The benchmark machine is a shared VM whose speed changes from second to
second. This script alternates a fixed pure-Python loop (no cnnspec, no
allocation) with `cnnspec.check("specs/resnet152.cnn")`, with a short pause
between pairs as between the calls of an interactive user, and prints the
spread of each and how they move together. When the loop's own time moves
by a factor of two, so does the check's, and the check's ratio to
torchinfo in bench_core.py moves with the machine, not with the code.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

SPEC = Path(__file__).resolve().parent.parent / "specs" / "resnet152.cnn"


def spin() -> float:
    """Seconds for a fixed loop of integer additions."""
    t = time.perf_counter()
    s = 0
    for i in range(30_000):
        s += i
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    import cnnspec

    cnnspec.check(SPEC)
    loops, checks = [], []
    for _ in range(args.calls):
        loops.append(spin() * 1e3)
        t = time.perf_counter()
        cnnspec.check(SPEC)
        checks.append((time.perf_counter() - t) * 1e3)
        time.sleep(0.05)
    for name, v in (("fixed loop", loops), ("check", checks)):
        deciles = statistics.quantiles(v, n=10)
        print(
            f"{name:10s} ms: median {statistics.median(v):.2f}, fastest {min(v):.2f}, "
            f"deciles 10%..90% {deciles[0]:.2f} .. {deciles[-1]:.2f}"
        )
    print(f"correlation of the two, pair by pair: {statistics.correlation(loops, checks):.2f}")
    fast = min(loops) * 1.25
    in_fast = [c for loop, c in zip(loops, checks, strict=True) if loop <= fast]
    if in_fast:
        print(
            f"pairs whose loop ran within 25% of its fastest: {len(in_fast)} of {len(loops)}, "
            f"their check median {statistics.median(in_fast):.2f} ms"
        )


if __name__ == "__main__":
    main()
