"""Loader-only images/s for image folders: the PIL path that cnnspec used before against the tensor path.

Writes a folder of JPEGs (no download: structured random pictures, 256 to
500 px a side, made with PIL), then times a DataLoader over it at 224 x 224,
with the same worker processes and batch for both paths:

- ``PIL``: torchvision's ``ImageFolder`` (PIL decode, ``convert("RGB")``)
  with PIL transforms and ``ToTensor`` (cnnspec before issue 26);
- ``tensor``: cnnspec's ``ImageFiles`` (``torchvision.io.decode_jpeg`` into
  uint8 tensors, v2 transforms on tensors).

Each row times the second pass over the folder (the first starts the workers
and warms the page cache); the median of ``--repeats`` runs, alternating the
two paths so that drift in the machine's speed hits both alike.

    python benchmarks/bench_loader.py [--images 512] [--workers 2] [--batch 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
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

from cnnspec.train import data  # noqa: E402

SIZE = 224


def write_jpegs(root: Path, n: int, classes: int = 4, seed: int = 0) -> None:
    """``n`` JPEGs in ``root/train/<class>/`` (and ``root/val`` the same files), 256-500 px, quality 90."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = (int(v) for v in rng.integers(256, 501, 2))
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


def images_per_s(dataset, workers: int, batch: int) -> float:
    """Images/s of the second pass of a DataLoader over ``dataset`` (persistent workers)."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    for _ in loader:  # starts the workers
        pass
    start, n = time.perf_counter(), 0
    for batch_ in loader:
        n += batch_[0].shape[0]
    return n / (time.perf_counter() - start)


def main() -> None:
    """Write the folder, time both paths, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torchvision 0.29 on its own decoders
    torch.set_num_threads(1)  # as in a DataLoader worker; the main process only collates
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_jpegs(root, args.images)
        paths = {"PIL": pil_sets(root), "tensor": tensor_sets(root)}
        rates: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for name, (train, val) in paths.items():
                for split, dataset in (("train", train), ("val", val)):
                    rates.setdefault((name, split), []).append(images_per_s(dataset, args.workers, args.batch))
    print(f"machine: {machine()}")
    print(
        f"{args.images} JPEGs of 256-500 px, {SIZE} x {SIZE} out, {args.workers} loader workers, batch {args.batch}, "
        f"median of {args.repeats}"
    )
    print(f"{'transforms':<34} {'PIL img/s':>10} {'tensor img/s':>13} {'ratio':>7}")
    for split, what in (("train", "random resized crop + flip"), ("val", "resize + centre crop")):
        old = statistics.median(rates[("PIL", split)])
        new = statistics.median(rates[("tensor", split)])
        print(f"{split + ': ' + what:<34} {old:>10.0f} {new:>13.0f} {new / old:>6.2f}x")


if __name__ == "__main__":
    main()
