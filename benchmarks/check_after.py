"""How long `cnnspec.check` of a spec (ResNet-152) takes right after other work, on this machine.

    python benchmarks/check_after.py [--repeats 15] [--spec specs/resnet152.cnn]

bench_core.py alternates one check with one `torchinfo.summary`, so every
check it times runs right after 0.3 s or more of other work. This script
asks whether that slows the check because of torchinfo in particular or
because of any pause: it times the check right after each of a few kinds of
work (nothing, a sleep, a busy loop that touches almost no memory, a 64 MB
memory sweep, allocating Python objects, a torch forward pass,
torchinfo.summary) and prints the median of each.

Beside each, a control: a fixed loop of plain Python arithmetic that
allocates nothing and touches almost no memory, timed the same way, the
repeats alternating between the two so that both see the same moments of
a shared machine (back to back, each runs once untimed right before it is
timed). Where the loop slows by
the same factor as the check, what slows the check is the machine's state
after other work, not what the check does.
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


def control(iterations: int = 60_000) -> int:
    """A fixed amount of interpreter work: no allocation, almost no memory (about 2 ms here)."""
    x = 0
    for i in range(iterations):
        x += i
    return x


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

    work: list[tuple[str, Callable[[], object] | None]] = [
        ("itself (back to back)", None),
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
        control()
    print(f"Medians of {args.repeats}, each timed right after the work; x: against back to back")
    print(f"  {'right after':36} {'check of ' + spec.name:>26}  {'control loop':>18}")
    base: tuple[float, float] | None = None
    for label, before in work:
        checks, loops = [], []
        for _ in range(args.repeats):
            for call, times in ((lambda: cnnspec.check(spec), checks), (control, loops)):
                (before or call)()
                t = time.perf_counter()
                call()
                times.append(time.perf_counter() - t)
        check_ms, loop_ms = statistics.median(checks) * 1e3, statistics.median(loops) * 1e3
        base = base or (check_ms, loop_ms)
        print(
            f"  {label:36} {check_ms:6.2f} ms (fastest {min(checks) * 1e3:.2f}) {check_ms / base[0]:4.2f}x"
            f"  {loop_ms:6.2f} ms {loop_ms / base[1]:4.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
