"""Image folders: loader-only images/s for each input path, and `cnnspec train` against a plain loop.

Writes a folder of JPEGs (no download: structured random pictures, 256 to
500 px a side or ``--source-size WxH``, made with PIL), then times, at
``--size`` (224) and with the same worker processes and batch for each path:

- ``PIL``: torchvision's ``ImageFolder`` (PIL decode, ``convert("RGB")``)
  with PIL transforms and ``ToTensor`` (cnnspec before issue 26);
- ``tensor``: cnnspec's ``ImageFiles`` in the workers (``torchvision.io.decode_jpeg``
  into uint8 tensors, v2 transforms on tensors): ``--image-pipeline workers``;
- ``device``: the workers read bytes; decode (nvJPEG on CUDA) and augmentation
  on ``--device`` (cuda when there is one, else cpu) through cnnspec's
  prefetcher: ``--image-pipeline device`` (``auto`` picks it on CUDA). Timed up to
  the last batch being ready on the device.

Each row times the second pass over the folder (the first starts the workers
and warms the page cache); the median of ``--repeats`` runs, alternating the
paths so that drift in the machine's speed hits all alike.

``--train`` then measures training images/s on the same folder, the second
epoch of each: ``cnnspec train`` on the ResNet-50 spec against a plain
hand-written loop on torchvision's ResNet-50 fed by the same device pipeline
(bf16 autocast and channels_last on CUDA, batch ``--batch``), eager and, with
``--compile``, under torch.compile. ``--quick`` shrinks the training run
(64 x 64, at most 4 steps an epoch, eager only) to try it on a CPU.

    python benchmarks/bench_loader.py [--images 512] [--workers 2] [--batch 64] [--repeats 3]
    python benchmarks/bench_loader.py --images 256 --batch 8 --repeats 1 --train --quick     # a CPU try
    python benchmarks/bench_loader.py --images 6144 --workers 12 --batch 256 --train --compile  # the GPU figures
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_check import machine  # noqa: E402  (benchmarks/ is the script's folder, first on sys.path)

import cnnspec  # noqa: E402
from cnnspec.train import data, device_images  # noqa: E402

SIZE = 224
CLASSES = 4


def write_jpegs(
    root: Path, n: int, classes: int = CLASSES, seed: int = 0, source_size: tuple[int, int] | None = None
) -> None:
    """``n`` JPEGs in ``root/train/<class>/`` (and ``root/val`` the same files), 256-500 px, quality 90."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = source_size or (int(v) for v in rng.integers(256, 501, 2))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        # Waves, a gradient and noise: edges and texture like a photo's, so JPEG and resize do real work.
        waves = np.stack([np.sin(xx / (4 + i % 17)), np.cos(yy / (6 + i % 11)), np.sin((xx + yy) / (9 + i % 7))], -1)
        pixels = (waves + 1) * 90 + (xx / w * 60)[..., None] + rng.normal(0, 10, (h, w, 3))
        folder = root / "train" / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(folder / f"{i}.jpg", quality=90)
    (root / "val").symlink_to(root / "train", target_is_directory=True)


def pil_sets(root: Path):
    """The training and validation sets as cnnspec built them before: ImageFolder with PIL transforms."""
    from torchvision import datasets
    from torchvision import transforms as T

    tail = [T.ToTensor(), T.Normalize(data.IMAGENET_MEAN, data.IMAGENET_STD)]
    train = T.Compose([T.RandomResizedCrop((SIZE, SIZE)), T.RandomHorizontalFlip(), *tail])
    val = T.Compose([T.Resize(round(SIZE / 0.875)), T.CenterCrop((SIZE, SIZE)), *tail])
    return datasets.ImageFolder(str(root / "train"), train), datasets.ImageFolder(str(root / "val"), val)


def tensor_sets(root: Path):
    """The training and validation sets as cnnspec builds them now."""
    ds = data.imagefolder(root, (3, SIZE, SIZE))
    return ds.train, ds.val


def device_loader(files, device: str, workers: int, batch: int, *, train: bool, shuffle: bool, drop_last: bool = False):
    """A DataLoader reading ``files``' bytes, prepared on ``device`` by cnnspec's stage and prefetcher."""
    cuda = device == "cuda"
    fmt = torch.channels_last
    stage = device_images.DeviceImages(
        files.shape[1:],
        files.shape[0],
        train=train,
        device=device,
        dtype=torch.bfloat16 if cuda else torch.float32,
        memory_format=fmt,
    )
    loader = DataLoader(
        device_images.RawImageFiles(files),
        batch_size=batch,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=cuda,
        collate_fn=device_images.collate_raw,
    )
    return device_images.Prefetcher(loader, stage)


def device_sets(root: Path, device: str, workers: int, batch: int):
    """Loaders of the device path for the training and validation sets."""
    ds = data.imagefolder(root, (3, SIZE, SIZE))
    return tuple(
        device_loader(files, device, workers, batch, train=train, shuffle=True)
        for files, train in ((ds.train, True), (ds.val, False))
    )


def sync(device: str) -> None:
    """Wait for the device's queued work, so that host clocks measure it."""
    if device == "cuda":
        torch.cuda.synchronize()


def images_per_s(dataset, workers: int, batch: int, device: str = "cpu") -> float:
    """Images/s of the second pass of a DataLoader over ``dataset`` (persistent workers), or of a prefetcher."""
    if isinstance(dataset, device_images.Prefetcher):
        loader = dataset
    else:
        loader = DataLoader(
            dataset, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0
        )
    for _ in loader:  # starts the workers
        pass
    sync(device)
    start, n = time.perf_counter(), 0
    for batch_ in loader:
        n += batch_[0].shape[0]
    sync(device)
    return n / (time.perf_counter() - start)


def training_folder(root: Path, tmp: Path) -> Path:
    """The benchmark folder with a small validation split (a few files per class), so that epochs time training."""
    out = tmp / "trainfolder"
    (out / "val").mkdir(parents=True)
    (out / "train").symlink_to(root / "train", target_is_directory=True)
    for folder in sorted((root / "train").iterdir()):
        (out / "val" / folder.name).mkdir()
        for f in sorted(folder.iterdir())[:2]:
            (out / "val" / folder.name / f.name).symlink_to(f)
    return out


def trainer_images_per_s(root: Path, device: str, size: int, batch: int, workers: int, compile_: bool) -> float:
    """``cnnspec train`` (the ResNet-50 spec) on the folder: its second epoch's images/s."""
    cuda = device == "cuda"
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        result = cnnspec.train(
            lambda: cnnspec.compile(REPO / "specs" / "resnet50.cnn", input_shape=(3, size, size), num_classes=CLASSES),
            input_shape=(3, size, size),
            data=f"imagefolder:{root}",
            out=Path(tmp) / "run",
            epochs=2,
            batch_size=batch,
            precision="bf16" if cuda else "fp32",
            channels_last=True,
            compile=compile_,
            warmup_epochs=0,
            progress="off",
            device=device,
            num_workers=workers,
            image_pipeline="device",
            log_every=10_000,
        )
    return result.history[-1]["images_per_s"]


def plain_images_per_s(root: Path, device: str, size: int, batch: int, workers: int, compile_: bool) -> float:
    """A hand-written loop on torchvision's ResNet-50 fed by the same device pipeline: its second epoch's images/s."""
    import torchvision

    cuda = device == "cuda"
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=CLASSES).to(device).to(memory_format=torch.channels_last).train()
    step_model = torch.compile(model) if compile_ else model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-5)
    files = data.imagefolder(root, (3, size, size)).train
    loader = device_loader(files, device, workers, batch, train=True, shuffle=True, drop_last=True)
    rate = 0.0
    for _ in range(2):
        sync(device)
        start, n = time.perf_counter(), 0
        for x, y, _failed in loader:
            with torch.autocast(device, dtype=torch.bfloat16, enabled=cuda):
                loss = torch.nn.functional.cross_entropy(step_model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += y.shape[0]
        sync(device)
        rate = n / (time.perf_counter() - start)
    return rate


def main() -> None:
    """Write the folder, time the paths, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--source-size", metavar="WxH", help="every JPEG this size (default: 256-500 px a side)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--train", action="store_true", help="also time cnnspec train against a plain loop")
    parser.add_argument("--compile", action="store_true", help="--train: also under torch.compile")
    parser.add_argument("--quick", action="store_true", help="--train: 64 x 64, at most 4 steps an epoch, eager")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torchvision 0.29 on its own decoders
    source_size = tuple(int(v) for v in args.source_size.split("x")) if args.source_size else None
    torch.set_num_threads(1)  # as in a DataLoader worker; the main process only collates (or prepares on the GPU)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "jpegs"
        write_jpegs(root, args.images, source_size=source_size)  # type: ignore[arg-type]
        paths = {
            "PIL": pil_sets(root),
            "tensor": tensor_sets(root),
            "device": device_sets(root, args.device, args.workers, args.batch),
        }
        rates: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for name, (train, val) in paths.items():
                for split, dataset in (("train", train), ("val", val)):
                    rate = images_per_s(dataset, args.workers, args.batch, args.device)
                    rates.setdefault((name, split), []).append(rate)
        del paths  # their worker processes
        print(f"machine: {machine()}")
        what = f"{source_size[0]} x {source_size[1]}" if source_size else "256-500 px"
        print(
            f"{args.images} JPEGs of {what}, {SIZE} x {SIZE} out, {args.workers} loader workers, batch {args.batch}, "
            f"median of {args.repeats}; device path on {args.device}"
        )
        print(f"{'transforms':<34} {'PIL img/s':>10} {'tensor img/s':>13} {'device img/s':>13} {'tensor/PIL':>11}")
        for split, label in (("train", "random resized crop + flip"), ("val", "resize + centre crop")):
            old, new, dev = (statistics.median(rates[(name, split)]) for name in ("PIL", "tensor", "device"))
            print(f"{split + ': ' + label:<34} {old:>10.0f} {new:>13.0f} {dev:>13.0f} {new / old:>10.2f}x")
        if args.train:
            train_table(root, Path(tmp), args)


def train_table(root: Path, tmp: Path, args: argparse.Namespace) -> None:
    """cnnspec train against the plain loop, eager (and compiled), the second epoch of each."""
    size = 64 if args.quick else SIZE
    folder = training_folder(root, tmp)
    if args.quick:  # at most 4 steps an epoch: a subset of the files
        quick = tmp / "quickfolder"
        (quick / "train").mkdir(parents=True)
        (quick / "val").symlink_to(folder / "val", target_is_directory=True)
        for path in sorted((root / "train").rglob("*.jpg"), key=lambda p: int(p.stem))[: 4 * args.batch]:
            (quick / "train" / path.parent.name).mkdir(exist_ok=True)
            (quick / "train" / path.parent.name / path.name).symlink_to(path)
        folder = quick
    modes = [False] + ([True] if args.compile and not args.quick else [])
    print(
        f"training: ResNet-50, {size} x {size}, batch {args.batch}, {args.workers} loader workers, {args.device}"
        f"{', bf16 autocast, channels_last' if args.device == 'cuda' else ', fp32, channels_last'}; second epoch"
    )
    print(f"{'mode':<10} {'cnnspec train img/s':>20} {'plain loop img/s':>17} {'ratio':>7}")
    for compile_ in modes:
        ours = trainer_images_per_s(folder, args.device, size, args.batch, args.workers, compile_)
        theirs = plain_images_per_s(folder, args.device, size, args.batch, args.workers, compile_)
        label = "compiled" if compile_ else "eager"
        print(f"{label:<10} {ours:>20.1f} {theirs:>17.1f} {ours / theirs:>6.3f}x", flush=True)


if __name__ == "__main__":
    main()
