"""Data sources: sklearn's digits, an ImageNet-style image folder, synthetic tensors.

Each source is shaped to the network's input (C, H, W) and checked against
its class count before any training starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset, Sampler

from cnnspec.train import distributed
from cnnspec.train.errors import TrainError, UsageError
from cnnspec.train.sampler import GlobalBatchSampler, ShardSampler

if TYPE_CHECKING:
    from cnnspec.train.config import TrainConfig
    from cnnspec.train.model import ModelSource

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class DataSource:
    """Training and validation sets ready for a network with a given input."""

    train: Dataset
    val: Dataset
    num_classes: int
    name: str
    notes: list[str] = field(default_factory=list)  # warnings about the data, printed once before training


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


def for_training(
    config: TrainConfig, source: ModelSource, *, rank: int, world: int, replicas: int, replica: int
) -> tuple[DataSource, GlobalBatchSampler, ShardSampler]:
    """The run's data, checked (a collective over all ``world`` workers), and this worker's samplers.

    The samplers share the sets out among ``replicas`` data-parallel
    replicas, this worker being ``replica``; a training set smaller than one
    global batch is refused.
    """
    ds = load(
        config.data,
        input_shape=source.input_shape,
        num_classes=source.num_classes,
        val_fraction=config.val_fraction,
        seed=config.data_seed,
    )
    # Every worker checks a share of an image folder's files; all reach the same verdict, so none hangs.
    ds = check_images(ds, rank=rank, world=world, gather=distributed.gather_objects, skip=config.skip_bad_images)
    sampler = GlobalBatchSampler(
        ds.train,
        num_replicas=replicas,
        rank=replica,
        batch_size=config.batch_size,
        accum_steps=config.accum_steps,
        seed=config.seed,
    )
    if sampler.steps_per_epoch == 0:
        raise TrainError(
            f"{ds.name} has {len(ds.train)} training images, fewer than one global batch of "
            f"{sampler.global_batch}; lower --batch-size or --accum-steps"
        )
    return ds, sampler, ShardSampler(ds.val, num_replicas=replicas, rank=replica)


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
    """``root/train/<class>/*`` and ``root/val/<class>/*`` with ImageNet-style augmentation.

    The files are found here; :func:`check_images` checks them before training
    (cnnspec/train/images.py says how each kind of bad file is treated).
    """
    from cnnspec.train import images

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
    found = {}
    for part in ("train", "val"):
        try:
            found[part] = images.find_files(root / part)
        except OSError as exc:
            raise UsageError(f"--data imagefolder:{root}: cannot list {part}/ ({exc.strerror or exc})") from exc
    (classes, train_samples, train_per_class, train_ignored) = found["train"]
    (val_classes, val_samples, val_per_class, val_ignored) = found["val"]
    if not classes:
        raise UsageError(f"--data imagefolder:{root}: train/ holds no class folders; expected train/<class>/...")
    if classes != val_classes:
        only = sorted(set(classes) ^ set(val_classes))
        raise TrainError(
            f"--data imagefolder:{root}: train/ and val/ hold different class folders "
            f"({len(classes)} vs {len(val_classes)}; only in one: {', '.join(only[:5])}); give both the same classes"
        )
    notes = []
    ignored = train_ignored + val_ignored
    empty_train = [name for name, files in train_per_class.items() if not files]
    if empty_train:
        # A class without training images cannot be learned, yet the network keeps a score for it: refuse.
        more = f" (it holds only files left out: {images.list_names(root, ignored)})" if ignored else ""
        raise UsageError(
            f"--data imagefolder:{root}: no images in class folder"
            f"{'s' if len(empty_train) > 1 else ''} {images.list_names(root, [f'train/{n}' for n in empty_train])}"
            f"{more}; add its images or remove the folder from train/ and val/"
        )
    empty_val = [name for name, files in val_per_class.items() if not files]
    if empty_val:
        # Evaluation stays correct for the other classes: small hand-made splits often lack a few.
        notes.append(
            f"warning: no validation images in {images.list_names(root, [f'val/{n}' for n in empty_val])}; "
            "validation covers the other classes"
        )
    if ignored:
        notes.append(
            f"note: left out {len(ignored)} file{'s' if len(ignored) > 1 else ''} not named as images or hidden "
            f"({images.list_names(root, ignored)}); images are {', '.join(sorted(images.IMAGE_SUFFIXES))}"
        )
    train = images.ImageFiles(root, classes, train_samples, images.transforms((h, w), c, train=True),
                              shape=(c, h, w), replace_failed=True)
    val = images.ImageFiles(root, classes, val_samples, images.transforms((h, w), c, train=False),
                            shape=(c, h, w), replace_failed=False)
    return DataSource(train=train, val=val, num_classes=len(classes), name=f"imagefolder:{root}", notes=notes)


def check_images(
    ds: DataSource, *, rank: int, world: int, gather: Callable[[Any], list[Any]], skip: bool
) -> DataSource:
    """Check an image folder's files before training (each worker a share; ``gather`` pools the findings).

    Bad files are an error naming them, or with ``skip`` left out with a
    warning. Every worker reaches the same verdict, so none waits for another.
    """
    from cnnspec.train import images

    if not isinstance(ds.train, images.ImageFiles) or not isinstance(ds.val, images.ImageFiles):
        return ds
    mine = [path for path, _ in ds.train.samples + ds.val.samples][rank::world]
    bad = sorted(b for found in gather(images.check_files(mine)) for b in found)
    if not bad:
        return ds
    root = ds.train.root
    first = f"{images.list_names(root, [bad[0][0]])} {bad[0][1]}"
    names = images.list_names(root, [p for p, _ in bad])
    what = first if len(bad) == 1 else f"{len(bad)} bad image files ({names}); {first}"
    them = "it" if len(bad) == 1 else "them"
    if not skip:
        raise UsageError(
            f"--data imagefolder:{root}: {what}; remove or replace {them}, "
            f"or pass --skip-bad-images to train without {them}"
        )
    dropped = {p for p, _ in bad}
    for part in (ds.train, ds.val):
        part.samples = [s for s in part.samples if s[0] not in dropped]
    left = {label for _, label in ds.train.samples}
    if len(left) < ds.num_classes:
        lost = [f"train/{name}" for label, name in enumerate(ds.train.classes) if label not in left]
        raise UsageError(
            f"--data imagefolder:{root}: with the bad image files left out (--skip-bad-images), no images remain in "
            f"{images.list_names(root, lost)}; {first}"
        )
    ds.notes.append(f"warning: --skip-bad-images: left out {what}")
    return ds


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
