"""GPU throughput of ``cnnspec train`` on one H200: ResNet-50, bf16, channels_last.

Prepared for a GPU machine; it needs CUDA and refuses to run without it.
It trains the compiled ``specs/resnet50.cnn`` on synthetic 224x224 images at
batch 256, once eagerly and once through ``torch.compile``, and prints
images/s for both (the second epoch of each run, so compilation and cuDNN
autotuning are excluded), next to a plain PyTorch loop on torchvision's
ResNet-50 under the same settings. Both take their batches from synthetic
images held on the GPU (`--plain-data cpu` has the plain loop collate them
on the CPU through a DataLoader instead, as the trainer did before 213bd00).

    python benchmarks/gpu_train_h200.py [--batch 256] [--steps 30] [--epochs 2] [--modes eager compile]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cnnspec  # noqa: E402
from cnnspec.train.data import synthetic  # noqa: E402


def cnnspec_run(batch: int, steps: int, compile_: bool, epochs: int = 2) -> list[float]:
    """images/s of every epoch of cnnspec.train (bf16, channels_last)."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        result = cnnspec.train(
            str(REPO / "specs" / "resnet50.cnn"),
            data=f"synthetic:{batch * steps}",
            out=Path(tmp) / "run",
            epochs=epochs,
            batch_size=batch,
            precision="bf16",
            channels_last=True,
            compile=compile_,
            warmup_epochs=0,
            progress="off",
            device="cuda",
            log_every=steps,
        )
    return [h["images_per_s"] for h in result.history]


def plain_run(batch: int, steps: int, compile_: bool, on_device: bool) -> float:
    """images/s of a hand-written bf16/channels_last loop on torchvision's ResNet-50."""
    import torchvision

    model = torchvision.models.resnet50().cuda().to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_ else model
    data = synthetic((3, 224, 224), 1000, size=batch * steps, seed=0).train
    if on_device:
        images, labels = data.images.cuda(), data.labels.cuda()

        def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            order = torch.randperm(len(labels), device="cuda")
            for i in range(steps):
                idx = order[i * batch : (i + 1) * batch]
                yield images.index_select(0, idx % len(images)), labels.index_select(0, idx)
    else:
        loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True, pin_memory=True)

        def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            return iter(loader)

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-5)
    loss_fn = nn.CrossEntropyLoss()

    def epoch() -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for x, y in batches():
            x = x.cuda(non_blocking=True).to(memory_format=torch.channels_last)
            y = y.cuda(non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = loss_fn(step_model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        return steps * batch / (time.perf_counter() - t0)

    epoch()
    return epoch()


def main() -> None:
    """Measure and print images/s with and without torch.compile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=2, help="cnnspec's figure is its last epoch's")
    parser.add_argument(
        "--plain-data", choices=["device", "cpu"], default="device", help="where the plain loop batches"
    )
    parser.add_argument("--modes", nargs="+", choices=["eager", "compile"], default=["eager", "compile"])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_train_h200.py needs a CUDA device")
    torch.backends.cudnn.benchmark = True
    print(
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}, ResNet-50, batch {args.batch}, "
        "bf16, channels_last, 224x224 synthetic"
    )
    for mode in args.modes:
        compile_ = mode == "compile"
        epochs = cnnspec_run(args.batch, args.steps, compile_, args.epochs)
        ours = epochs[-1]
        theirs = plain_run(args.batch, args.steps, compile_, args.plain_data == "device")
        label = "torch.compile" if compile_ else "eager"
        print(
            f"{label:>13}: cnnspec train {ours:8.1f} img/s   plain loop {theirs:8.1f} img/s   "
            f"ratio {ours / theirs:.3f}   (cnnspec by epoch: {', '.join(f'{v:.0f}' for v in epochs)})",
            flush=True,
        )


if __name__ == "__main__":
    main()
