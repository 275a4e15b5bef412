"""How long `cnnspec.check` of a spec (ResNet-152) takes right after other work, on this machine.

    python benchmarks/check_after.py [--repeats 15] [--spec specs/resnet152.cnn]

bench_core.py alternates one check with one `torchinfo.summary`, so every
check it times runs right after 0.3 s or more of other work. This script
asks whether that slows the check because of torchinfo in particular or
because of any pause: it times the check right after each of a few kinds of
work (nothing, a sleep, a busy loop that touches almost no memory, a 64 MB
memory sweep, allocating Python objects, a torch forward pass,
torchinfo.summary) and prints the median of each.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

SPEC = Path(__file__).resolve().parents[1] / "specs" / "resnet152.cnn"


def spin(seconds: float) -> None:
    """Run the interpreter for `seconds` on a few bytecodes and almost no memory."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main() -> None:
    """Print the median check time after each kind of work."""
    import torch
    import torchinfo
    import torchvision

    import cnnspec

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--spec", type=Path, default=SPEC)
    args = p.parse_args()
    spec = args.spec

    model = torchvision.models.resnet152().eval()
    image = torch.randn(1, 3, 224, 224)
    buffer = torch.ones(64 * 2**20 // 8, dtype=torch.float64)

    def forward() -> None:
        with torch.no_grad():
            model(image)

    def allocate() -> None:
        objects = [object() for _ in range(300_000)]
        del objects

    work: list[tuple[str, Callable[[], object]]] = [
        ("nothing (checks back to back)", lambda: None),
        ("time.sleep(0.3)", lambda: time.sleep(0.3)),
        ("a 0.3 s busy loop", lambda: spin(0.3)),
        ("reading 64 MB", buffer.sum),
        ("writing 64 MB", lambda: buffer.fill_(1.0)),
        ("allocating 300,000 Python objects", allocate),
        ("ResNet-152 forward pass", forward),
        ("torchinfo.summary of ResNet-152", lambda: torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0)),
    ]
    for _ in range(5):
        cnnspec.check(spec)
    print(f"cnnspec.check({spec.name}), median of {args.repeats}, each right after:")
    for label, before in work:
        times = []
        for _ in range(args.repeats):
            before()
            t = time.perf_counter()
            cnnspec.check(spec)
            times.append(time.perf_counter() - t)
        print(f"  {label:36} {statistics.median(times) * 1e3:6.2f} ms  (fastest {min(times) * 1e3:.2f})", flush=True)


if __name__ == "__main__":
    main()
