"""CPU step time of a 2-stage pipeline (GPipe, 1F1B) against one process at the same global batch.

Every run trains the same spec on the same synthetic images for two epochs
through the real command line (``cnnspec train``); the figure is the second
epoch's time per optimizer step (global batch / its ``images_per_s``), so
start-up, the first epoch's warm-up and validation are left out.

    python benchmarks/bench_pipeline.py [--spec specs/resnet18.cnn] [--batch 32] [--microbatches 4]
                                        [--images 128] [--repeats 1]

Runs of one repeat go one after the other (one process, one process
accumulating the micro-batches, GPipe, 1F1B), so drift in the machine's speed
hits them alike; with --repeats R the medians are reported. On a machine of C
cores each pipeline worker gets C / 2 threads, the one-process runs all C.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def step_time(spec: str, images: int, batch: int, extra: list[str], out: Path) -> float:
    """Seconds per optimizer step in the second epoch of a `cnnspec train` run."""
    args = [sys.executable, "-m", "cnnspec", "train", spec, "--data", f"synthetic:{images}", "--epochs", "2",
            "--batch-size", str(batch), "--progress", "off", "--out", str(out), *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[3:])} failed:\n{done.stderr[-2000:]}")
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    global_batch = batch * int(extra[extra.index("--accum-steps") + 1]) if "--accum-steps" in extra else batch
    return global_batch / last["images_per_s"]


def main() -> None:
    """Run the comparison and print one line per configuration."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="specs/resnet18.cnn")
    ap.add_argument("--batch", type=int, default=32, help="global batch (one pipeline's, split into micro-batches)")
    ap.add_argument("--microbatches", type=int, default=4)
    ap.add_argument("--images", type=int, default=128, help="synthetic training images (an epoch)")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    m = a.microbatches
    runs = {
        f"one process, batch {a.batch}": (a.batch, []),
        f"one process, {m} x {a.batch // m} accumulated": (a.batch // m, ["--accum-steps", str(m)]),
        f"2-stage GPipe, {m} micro-batches": (a.batch, ["--pipeline", "2", "--microbatches", str(m),
                                                       "--schedule", "gpipe", "--nproc-per-node", "2"]),
        f"2-stage 1F1B, {m} micro-batches": (a.batch, ["--pipeline", "2", "--microbatches", str(m),
                                                      "--schedule", "1f1b", "--nproc-per-node", "2"]),
    }  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for i, (name, (batch, extra)) in enumerate(runs.items()):
                times[name].append(step_time(a.spec, a.images, batch, extra, Path(tmp) / f"{r}-{i}"))
    print(f"{a.spec}, global batch {a.batch}, {os.cpu_count()} CPUs, median of {a.repeats}:")
    base = statistics.median(next(iter(times.values())))
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"  {name:<40} {t * 1000:8.0f} ms/step  ({t / base:.2f}x)")


if __name__ == "__main__":
    main()
