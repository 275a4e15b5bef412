"""Data sources: sklearn's digits, an ImageNet-style image folder, synthetic tensors.

Each source is shaped to the network's input (C, H, W) and checked against
its class count before any training starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from cnnspec.train.errors import TrainError, UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class DataSource:
    """Training and validation sets ready for a network with a given input."""

    train: Dataset
    val: Dataset
    num_classes: int
    name: str


def class_hint(data_classes: int, net_classes: int) -> str:
    """The message for a class-count mismatch, with the fix."""
    return (
        f"the data set has {data_classes} classes but the network outputs {net_classes} scores; "
        f"pass --set num_classes={data_classes} (or the spec's parameter for its class count)"
    )


def load(
    source: str,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> DataSource:
    """Build the data named by ``source`` for a network with ``input_shape`` (C, H, W)."""
    if len(input_shape) != 3:
        raise UsageError(
            f"the network's input is {' x '.join(map(str, input_shape))}; "
            "training needs an image input C x H x W"
        )
    kind, _, arg = source.partition(":")
    if kind == "digits":
        data = digits(input_shape, val_fraction=val_fraction, seed=seed)
    elif kind == "imagefolder":
        if not arg:
            raise UsageError("--data imagefolder needs a path: --data imagefolder:PATH")
        data = imagefolder(Path(arg), input_shape)
    elif kind == "synthetic":
        try:
            size = int(arg) if arg else 2048
        except ValueError:
            raise UsageError(f"--data synthetic:N needs a whole number of images, got {arg!r}") from None
        data = synthetic(input_shape, num_classes, size=size, seed=seed)
    else:
        raise UsageError(f"unknown data source {source!r}; use digits, imagefolder:PATH or synthetic[:N]")
    if data.num_classes != num_classes:
        raise UsageError(class_hint(data.num_classes, num_classes))
    return data


def digits(input_shape: tuple[int, ...], *, val_fraction: float, seed: int) -> DataSource:
    """scikit-learn's 1797 handwritten 8x8 digits, split, normalised and resized."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    c, h, w = input_shape
    if h < 8 or w < 8:
        raise UsageError(
            f"the digits are 8 x 8 images but the network's input is {c} x {h} x {w}; "
            "use a spec whose input is at least 8 x 8 (LeNet-5 takes 1 x 32 x 32)"
        )
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    train_idx, val_idx = train_test_split(
        list(range(len(labels))), test_size=val_fraction, random_state=seed, stratify=bunch.target
    )
    # Statistics from the training split only, so validation stays unseen.
    train_images = images[train_idx]
    mean, std = train_images.mean(), train_images.std()

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = (x - mean) / std
        if (h, w) != (8, 8):
            x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        return x.expand(-1, c, -1, -1).contiguous()

    train = TensorImages(prepare(train_images), labels[train_idx])
    val = TensorImages(prepare(images[val_idx]), labels[val_idx])
    return DataSource(train=train, val=val, num_classes=10, name="digits")


def imagefolder(root: Path, input_shape: tuple[int, ...]) -> DataSource:
    """``root/train/<class>/*`` and ``root/val/<class>/*`` with ImageNet-style augmentation."""
    from torchvision import datasets, transforms

    c, h, w = input_shape
    if c not in (1, 3):
        raise UsageError(
            f"image folders give RGB (3) or grayscale (1) images but the network takes {c} channels; "
            "use a spec with input 3 x H x W or 1 x H x W"
        )
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise UsageError(
                f"--data imagefolder:{root}: no {part}/ folder; expected {root}/train/<class>/... "
                f"and {root}/val/<class>/..."
            )
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if c == 3 else ((0.449,), (0.226,))
    colour = [transforms.Grayscale(num_output_channels=1)] if c == 1 else []
    tail = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    train_tf = transforms.Compose(
        [*colour, transforms.RandomResizedCrop((h, w)), transforms.RandomHorizontalFlip(), *tail]
    )
    # The usual 0.875 crop ratio: resize the short side, then take the centre.
    val_tf = transforms.Compose(
        [*colour, transforms.Resize(round(min(h, w) / 0.875)), transforms.CenterCrop((h, w)), *tail]
    )
    try:
        # torchvision's default loader converts every image to RGB.
        train = datasets.ImageFolder(str(root / "train"), transform=train_tf)
        val = datasets.ImageFolder(str(root / "val"), transform=val_tf)
    except (FileNotFoundError, OSError) as exc:
        raise UsageError(f"--data imagefolder:{root}: {exc}") from exc
    if train.classes != val.classes:
        raise TrainError(
            f"--data imagefolder:{root}: train/ and val/ hold different class folders "
            f"({len(train.classes)} vs {len(val.classes)}); give both the same classes"
        )
    return DataSource(train=train, val=val, num_classes=len(train.classes), name=f"imagefolder:{root}")


def synthetic(input_shape: tuple[int, ...], num_classes: int, *, size: int, seed: int) -> DataSource:
    """Random images and labels, for measuring throughput only (nothing to learn)."""
    g = torch.Generator().manual_seed(seed)
    # A small pool of distinct images reused by index keeps memory flat for big inputs.
    pool = min(size, 64)
    images = torch.randn((pool, *input_shape), generator=g)
    labels = torch.randint(0, num_classes, (size,), generator=g)
    train = TensorImages(images, labels)
    val_size = max(1, min(size // 10, 256))
    val = TensorImages(images, labels[:val_size])
    return DataSource(train=train, val=val, num_classes=num_classes, name=f"synthetic:{size}")


class TensorImages(Dataset):
    """``len(labels)`` samples held as tensors; sample i is ``(images[i % len(images)], labels[i])``.

    With as many images as labels that is a plain image set (digits); with
    fewer, the images cycle through a small pool (synthetic data).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i % len(self.images)], self.labels[i]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples at indices, stacked: one gather per tensor."""
        # index_select, not images[...]: on the CPU it copies whole rows, which advanced indexing does not.
        return self.images.index_select(0, indices % len(self.images)), self.labels.index_select(0, indices)


def on_device(sets: list[TensorImages], device: torch.device | str) -> list[TensorImages]:
    """The same sets with their tensors on device, a tensor that several share moved once.

    Synthetic data's training and validation sets share one pool of images
    (about 38 MB at 224 x 224), which would otherwise be two copies there.
    """
    moved: dict[int, torch.Tensor] = {}

    def move(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in moved:
            moved[id(t)] = t.to(device)
        return moved[id(t)]

    return [TensorImages(move(s.images), move(s.labels)) for s in sets]


class TensorBatches:
    """Batches of a TensorImages in a sampler's order, gathered where its tensors are.

    What a DataLoader over it would yield, without its per-sample indexing,
    collation, pinning and copying: held on the GPU, a synthetic ResNet-50
    batch of 256 (154 MB) is one gather there instead of three copies by the
    CPU, which bounded the training loop on an H200 (docs/performance.md, "On a GPU").
    The last batch may be short, as a DataLoader's is without drop_last.
    """

    def __init__(self, data: TensorImages, sampler: Sampler[int], batch_size: int) -> None:
        self.data, self.sampler, self.batch_size = data, sampler, batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.tensor(list(self.sampler), dtype=torch.long, device=self.data.labels.device)
        for chunk in order.split(self.batch_size):
            yield self.data.batch(chunk)

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)  # type: ignore[arg-type]
