"""Issue 2 benchmarks: check, compile, a training step and the CLI's cold start.

    python benchmarks/bench_core.py [--quick]

Each comparison interleaves the two contenders and reports medians:
  1. cnnspec.check(ResNet-152) vs torchinfo.summary(torchvision resnet152)   target >= 100x faster
     (also with every report row built: layers, groups, folds, stages, table)
  2. cnnspec.compile(ResNet-152) vs torchvision.models.resnet152()           target <= 1.1x the time
  3. forward+backward of compiled ResNet-50 vs torchvision's, same weights   target speed ratio >= 0.98
  4. `cnnspec check specs/resnet152.cnn` as a fresh process                  target < 1 s
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def machine() -> str:
    """CPU model and core count, for the results table."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    import torch

    return f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def timings(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of each call of a and of b, alternating so drift hits both alike."""
    ta, tb = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        a()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        b()
        tb.append(time.perf_counter() - t)
    return ta, tb


def interleaved(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of a and of b, alternating so drift hits both alike."""
    ta, tb = timings(a, b, repeats)
    return statistics.median(ta), statistics.median(tb)


def bench_check(repeats: int) -> dict[str, float]:
    """check() as the API returns it, and check() with every report row built.

    The report builds its rows (one per layer, the folded tree, the table) on
    first use; every figure in them comes from passes that check() has run.
    The second time says what a caller that reads all of them pays.
    """
    import torchinfo
    import torchvision

    import cnnspec

    spec = SPECS / "resnet152.cnn"
    tv = torchvision.models.resnet152()

    def ours() -> object:
        return cnnspec.check(spec)

    def ours_all_rows() -> object:
        report = cnnspec.check(spec)
        return report.layers, report.groups, report.folds, report.stages, report.aux_outputs, report.table

    def theirs() -> object:
        return torchinfo.summary(tv, input_size=(1, 3, 224, 224), verbose=0)

    ours()
    ours_all_rows()
    a, b = timings(ours, theirs, repeats)
    rows, b2 = timings(ours_all_rows, theirs, repeats)
    med = statistics.median
    return {
        "cnnspec_check_s": med(a),
        "torchinfo_summary_s": med(b),
        "speedup": med(b) / med(a),
        # The shared machine switches between a fast and a slow state for seconds at a time;
        # the fastest call of each contender is the figure that state moves least.
        "speedup_best": min(b) / min(a),
        "cnnspec_check_all_rows_s": med(rows),
        "speedup_all_rows": med(b2) / med(rows),
        "speedup_all_rows_best": min(b2) / min(rows),
    }


def bench_compile(repeats: int) -> dict[str, float]:
    import torchvision

    import cnnspec

    spec = SPECS / "resnet152.cnn"
    cnnspec.compile(spec)
    t_ours, t_theirs = interleaved(lambda: cnnspec.compile(spec), torchvision.models.resnet152, repeats)
    return {"cnnspec_compile_s": t_ours, "torchvision_ctor_s": t_theirs, "ratio": t_ours / t_theirs}


def bench_train_step(repeats: int, batch: int, size: int) -> dict[str, float]:
    import torch
    import torchvision

    import cnnspec

    tv = torchvision.models.resnet50()
    ours = cnnspec.compile(SPECS / "resnet50.cnn")
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(model: torch.nn.Module) -> Callable[[], object]:
        def run() -> object:
            model.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            return loss

        return run

    for m in (ours, tv):
        m.train()
        step(m)()  # warm-up: allocator, kernels
    t_ours, t_theirs = interleaved(step(ours), step(tv), repeats)
    return {
        "batch": batch,
        "size": size,
        "cnnspec_step_s": t_ours,
        "torchvision_step_s": t_theirs,
        "speed_ratio": t_theirs / t_ours,
    }


def bench_cold_start(repeats: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "cnnspec", "check", str(SPECS / "resnet152.cnn")]
    subprocess.run(cmd, check=True, capture_output=True)  # fills the parser cache, as any earlier run does
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return {"cold_start_s": statistics.median(times), "min_s": min(times)}


def main() -> None:
    """Run every benchmark and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a small batch (smoke run)")
    args = parser.parse_args()
    r = 2 if args.quick else 5
    results = {"machine": machine()}
    results["check"] = bench_check(4 if args.quick else 21)
    print("check", results["check"], flush=True)
    results["compile"] = bench_compile(r)
    print("compile", results["compile"], flush=True)
    results["train_step"] = bench_train_step(3 if args.quick else 9, 2 if args.quick else 8, 224)
    print("train_step", results["train_step"], flush=True)
    results["cold_start"] = bench_cold_start(3 if args.quick else 7)
    print("cold_start", results["cold_start"], flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
