"""Throughput of ``cnnspec train`` against a plain PyTorch loop, on CPU.

Both train ResNet-50 (the compiled ``specs/resnet50.cnn`` versus torchvision's
``resnet50``) with SGD on the same synthetic images, the same batch and
precision. Runs alternate (cnnspec, plain, cnnspec, plain, ...) so drift in
the machine's speed hits both alike; medians are reported.

    python benchmarks/bench_train.py [--batch 8] [--steps 4] [--repeats 3] [--precision fp32] [--split]

Each repeat does ``steps`` warm-up steps and then ``steps`` timed steps; for
cnnspec that is two epochs of ``steps`` steps and the figure is the second
epoch's ``images_per_s`` from metrics.jsonl.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_check import machine  # noqa: E402  (benchmarks/ is the script's folder, first on sys.path)

import cnnspec  # noqa: E402
from cnnspec.train.data import synthetic  # noqa: E402

SPEC = REPO / "specs" / "resnet50.cnn"


def cnnspec_images_per_s(batch: int, steps: int, size: int, precision: str) -> float:
    """Second-epoch images/s of cnnspec.train on synthetic data."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        result = cnnspec.train(
            str(SPEC),
            data=f"synthetic:{batch * steps}",
            out=Path(tmp) / "run",
            epochs=2,
            batch_size=batch,
            precision=precision,
            warmup_epochs=0,
            # The plain loop's optimizer: lr 0.1 throughout (no scaling, no decay), so both
            # runs see the same weights' magnitudes (tiny learning rates breed denormals).
            base_lr=0.1,
            base_batch=batch,
            schedule="constant",
            progress="off",
            num_workers=0,
        )
    return result.history[-1]["images_per_s"]


def plain_images_per_s(batch: int, steps: int, size: int, precision: str, model: nn.Module | None = None) -> float:
    """images/s of a hand-written loop (torchvision's ResNet-50 unless ``model``), after as many warm-up steps."""
    import torchvision

    torch.manual_seed(0)
    model = model if model is not None else torchvision.models.resnet50()
    data = synthetic((3, size, size), 1000, size=batch * steps, seed=0).train
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    dtype = {"bf16": torch.bfloat16}.get(precision)

    def epoch() -> float:
        model.train()
        t0 = time.perf_counter()
        for x, y in loader:
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return len(loader) * batch / (time.perf_counter() - t0)

    epoch()  # warm-up
    return epoch()


def main() -> None:
    """Run the interleaved comparison and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument(
        "--split",
        action="store_true",
        help="also time the plain loop on the compiled spec, to separate loop and module",
    )
    args = parser.parse_args()
    size = 224  # the spec's input

    ours, theirs, mixed = [], [], []
    for i in range(args.repeats):
        ours.append(cnnspec_images_per_s(args.batch, args.steps, size, args.precision))
        theirs.append(plain_images_per_s(args.batch, args.steps, size, args.precision))
        if args.split:
            # The plain loop on the compiled spec separates trainer overhead from module speed.
            compiled = cnnspec.compile(str(SPEC))
            mixed.append(plain_images_per_s(args.batch, args.steps, size, args.precision, model=compiled))
        extra = f", plain loop on compiled spec {mixed[-1]:.2f} img/s" if mixed else ""
        print(
            f"repeat {i + 1}: cnnspec train {ours[-1]:.2f} img/s, plain loop {theirs[-1]:.2f} img/s{extra}", flush=True
        )
    a, b = statistics.median(ours), statistics.median(theirs)
    print(
        f"\nResNet-50, batch {args.batch}, {args.precision}, {size}x{size}, synthetic data, "
        f"{torch.get_num_threads()} torch threads; machine: {machine()}"
    )
    print(f"cnnspec train (median of {args.repeats}): {a:.2f} img/s")
    print(f"plain PyTorch loop (median of {args.repeats}): {b:.2f} img/s")
    print(f"ratio: {a / b:.3f} (target >= 0.97)")
    if mixed:
        c = statistics.median(mixed)
        print(f"plain loop on the compiled spec (median of {args.repeats}): {c:.2f} img/s")
        print(f"  trainer overhead ratio (cnnspec train / plain loop, same module): {a / c:.3f}")
        print(f"  module ratio (compiled spec / torchvision, same plain loop): {c / b:.3f}")


if __name__ == "__main__":
    main()
