"""Fuzz the checker: N specs (default 10,000), mutations of the stock specs and random ones.

    python tests/fuzz/fuzz_checker.py [-n 10000] [--seed 0] [--save DIR] [--timeout 20]

Each case must either check or fail with well-formed diagnostics (see
mutate.check_one); anything else is a crash, and a case that runs past
--timeout seconds is a hang. Both are counted, printed and saved to --save
for replay. The exit status is 1 when there was any. Same seed, same cases.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz.mutate import SPECS, check_one, mutate, random_spec, stock_texts


class Hang(Exception):
    """A case ran past the time limit."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def case(i: int, seed: int, stock: list[tuple[str, str]]) -> tuple[str, str]:
    """The i-th case of a run: (origin, text). Two in three mutate a stock spec."""
    rng = random.Random(f"{seed}:{i}")
    if rng.random() < 2 / 3:
        name, text = rng.choice(stock)
        return name, mutate(text, rng)
    text = random_spec(rng)
    return "random", mutate(text, rng) if rng.random() < 0.5 else text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000, help="number of cases")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds before a case counts as a hang")
    ap.add_argument("--save", type=Path, default=Path("fuzz-failures"), help="where failing cases are written")
    args = ap.parse_args(argv)
    args.save = args.save.resolve()  # before leaving for specs/

    os.chdir(SPECS)  # mutated specs keep their imports, which resolve against the working directory
    stock = stock_texts()
    outcomes: Counter[str] = Counter()
    failures: list[tuple[int, str, str]] = []
    signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    slowest = (0.0, -1)
    for i in range(args.n):
        origin, text = case(i, args.seed, stock)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
        try:
            outcomes[check_one(text)] += 1
        except Hang:
            outcomes["hang"] += 1
            failures.append((i, origin, f"hang: over {args.timeout} s\n"))
        except BaseException as exc:  # a crash is anything but a clean verdict
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcomes["crash"] += 1
            failures.append((i, origin, traceback.format_exc()))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, (time.perf_counter() - t0, i))
        if (i + 1) % 1000 == 0:
            print(f"{i + 1:>7} cases  {dict(outcomes)}  {time.perf_counter() - start:.0f} s", flush=True)

    for i, origin, why in failures:
        args.save.mkdir(parents=True, exist_ok=True)
        _, text = case(i, args.seed, stock)
        (args.save / f"case{i}.cnn").write_text(text, encoding="utf-8")
        (args.save / f"case{i}.txt").write_text(f"from {origin}\n{why}", encoding="utf-8")
        print(f"case {i} (from {origin}): {why.strip().splitlines()[-1]}")
    total = time.perf_counter() - start
    print(
        f"{args.n} cases, seed {args.seed}: {outcomes['ok']} accepted, {outcomes['error']} rejected with "
        f"diagnostics, {outcomes['crash']} crashes, {outcomes['hang']} hangs; {total:.0f} s "
        f"(slowest case {slowest[1]}: {slowest[0]:.2f} s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
