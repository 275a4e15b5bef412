"""A training step of compiled ResNet-50 with its residual adds in place, out of place, and torchvision's.

    python benchmarks/bench_inplace_add.py [--repeats 9] [--batch 8] [--size 224]

The compiler writes a residual add as `bn3 += downsample` where the body's
output is read by nothing else and kept by no backward (docs/language.md),
as torchvision's `out += identity`. This measures what that is worth: the
compiled module, a copy of it whose adds are made out of place again, and
torchvision's model, same weights, forward and backward, the three
interleaved in an order that rotates each repeat; medians.
"""

from __future__ import annotations

import argparse
import copy
import operator
import statistics
import time
from collections.abc import Callable
from pathlib import Path

SPEC = Path(__file__).resolve().parent.parent / "specs" / "resnet50.cnn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    import torch
    import torchvision

    import cnnspec

    tv = torchvision.models.resnet50()
    in_place = cnnspec.compile(SPEC)
    in_place.load_state_dict(tv.state_dict(), strict=True)
    out_of_place = copy.deepcopy(in_place)
    adds = 0
    for node in out_of_place.graph.nodes:
        if node.target is operator.iadd:
            node.target = operator.add
            adds += 1
    out_of_place.recompile()
    print(f"{adds} residual adds made out of place in the copy")

    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 1000, (args.batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(model: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()

        return run

    contenders = [("in place", step(in_place)), ("out of place", step(out_of_place)), ("torchvision", step(tv))]
    for model in (in_place, out_of_place, tv):
        model.train()
    for _, run in contenders:
        run()  # warm-up: allocator, kernels
    times: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for r in range(args.repeats):
        for name, run in contenders[r % 3 :] + contenders[: r % 3]:
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    med = {name: statistics.median(v) for name, v in times.items()}
    for name, m in med.items():
        print(f"{name:13s} {m:.3f} s   speed ratio to torchvision {med['torchvision'] / m:.3f}")


if __name__ == "__main__":
    main()
