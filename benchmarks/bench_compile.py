"""The compiled module against torchvision's: construction time and a training step, on CPU.

    python benchmarks/bench_compile.py [--runs 5] [--batch 8]

  1. `cnnspec.compile("specs/resnet152.cnn")` against `torchvision.models.resnet152()`;
  2. forward + backward of the compiled ResNet-50 against torchvision's, same weights,
     batch --batch at 224x224, fp32.
The two contenders alternate, so that a change in the machine's speed hits both alike; medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from bench_check import machine  # benchmarks/ is the script's folder, first on sys.path

import cnnspec

SPECS = Path(__file__).resolve().parent.parent / "specs"


def alternating(ours: Callable[[], object], theirs: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median seconds of each contender over `runs` alternating calls, after one untimed call of each."""
    ours(), theirs()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for call, seconds in zip((ours, theirs), times, strict=True):
            t = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - t)
    return statistics.median(times[0]), statistics.median(times[1])


def training_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One forward and backward pass of `model` in training mode."""
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()

    return step


def main() -> None:
    """Print both comparisons and the machine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    spec = SPECS / "resnet152.cnn"
    ours, theirs = alternating(lambda: cnnspec.compile(spec), torchvision.models.resnet152, args.runs)
    print(f"construct ResNet-152:  cnnspec.compile {ours:.3f} s, torchvision {theirs:.3f} s, ratio {ours / theirs:.2f}")

    tv = torchvision.models.resnet50()
    compiled = cnnspec.compile(SPECS / "resnet50.cnn")
    compiled.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(args.batch, 3, 224, 224)
    y = torch.randint(0, 1000, (args.batch,))
    ours, theirs = alternating(training_step(compiled, x, y), training_step(tv, x, y), args.runs)
    print(
        f"ResNet-50 step, batch {args.batch}: compiled {ours:.3f} s, torchvision {theirs:.3f} s, "
        f"speed ratio {theirs / ours:.3f}"
    )
    print(f"medians of {args.runs}; {torch.get_num_threads()} torch threads; machine: {machine()}")


if __name__ == "__main__":
    main()
