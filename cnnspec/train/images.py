"""Image folders: finding the files, checking them cheaply up front, and decoding them in loader workers.

``ROOT/train/<class>/...`` and ``ROOT/val/<class>/...`` as torchvision's
``ImageFolder`` reads them (classes sorted, files found recursively), with
these differences, each for a user's sake:

- Files whose names are not images' (``README.txt``, ``.DS_Store``) and hidden
  files (macOS's ``._x.jpg`` copies) are left out and counted in a note, not
  silently dropped and not fatal.
- Every image file is checked before training by its size and its first and
  last bytes (one open and two small reads, 84 us a file on this project's
  2-core machine: ImageNet's 1.28M files in under two minutes, shared among
  the workers, against about ten CPU-hours to decode them all). A 0-byte file, one that is no image
  at all, and a JPEG/PNG/GIF cut short (no end marker) are refused with their
  names, or left out with ``--skip-bad-images``. A file whose end marker is
  missing but which still decodes (trailing bytes after the image) passes.
- A file that passes that check but fails to decode during an epoch is
  reported by the training loop at its next sync point with its name (or
  skipped and counted with ``--skip-bad-images``), never as a loader traceback.
- Images are decoded by torchvision.io (libjpeg-turbo, libpng) straight into
  uint8 tensors and transformed as tensors, about twice as fast per core as
  PIL plus ``ToTensor`` (benchmarks/bench_loader.py); other formats (PNG,
  whose torchvision decoder crashes on damaged data) and files it refuses go
  through PIL. Grayscale, palette and CMYK images all become RGB.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch.utils.data import Dataset

#: Names torchvision's ImageFolder takes as images (plus .gif, which both decoders read).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp", ".gif"})

#: How many names an error or warning lists before "and N more".
SHOWN = 5


class ImageFiles(Dataset):
    """The images under one split folder, as ``(image, label, failed)`` samples.

    ``image`` is the transformed float tensor, ``label`` the class index and
    ``failed`` -1, or the index of this sample's file when it could not be
    decoded. A failed training sample is replaced by the next file that
    decodes (so batches keep their shape for DDP and torch.compile); a failed
    validation sample is a zero image that the evaluation leaves out.
    """

    def __init__(
        self,
        root: Path,
        classes: list[str],
        samples: list[tuple[str, int]],
        transform: Callable[[torch.Tensor], torch.Tensor],
        *,
        shape: tuple[int, int, int],
        replace_failed: bool,
    ) -> None:
        self.root, self.classes, self.samples = root, classes, samples
        self.transform, self.shape, self.replace_failed = transform, shape, replace_failed

    def __len__(self) -> int:
        return len(self.samples)

    def path(self, i: int) -> Path:
        """The file of sample ``i``."""
        return Path(self.samples[i][0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        image = self._load(i)
        if image is not None:
            return image, self.samples[i][1], -1
        if self.replace_failed:
            # Bounded: a run of this many undecodable neighbours is a broken disk, reported by the loop anyway.
            for step in range(1, min(len(self.samples), 64)):
                j = (i + step) % len(self.samples)
                other = self._load(j)
                if other is not None:
                    return other, self.samples[j][1], i
        return torch.zeros(self.shape), self.samples[i][1], i

    def _load(self, i: int) -> torch.Tensor | None:
        try:
            return self.transform(decode(Path(self.samples[i][0])))
        except Exception:  # PIL raises many types for damaged data (OSError, SyntaxError, ValueError, ...)
            return None


def decode(path: Path) -> torch.Tensor:
    """The image in ``path`` as a 3 x H x W uint8 RGB tensor; raises OSError (or RuntimeError) if it cannot be read.

    torchvision.io for JPEG (libjpeg-turbo straight into a tensor); PIL for the
    other formats and for files torchvision refuses, so one decoder's gap is
    not a bad image.
    """
    data = path.read_bytes()
    if _tensor_decodable(data):
        try:
            return _decode_tensor(data)
        except (RuntimeError, ImportError):
            pass
    return decode_pil(path)


def decode_pil(path: Path) -> torch.Tensor:
    """The image in ``path`` decoded by PIL, converted to RGB, as a 3 x H x W uint8 tensor."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1).contiguous()


def _tensor_decodable(data: bytes) -> bool:
    # JPEG only: torchvision 0.29's PNG decoder crashes the process (SIGSEGV) on a damaged IDAT chunk, where
    # PIL raises; its JPEG decoder survived 900 damaged files in tests (benchmarks/bench_loader.py's notes).
    return data.startswith(b"\xff\xd8\xff")


def _decode_tensor(data: bytes) -> torch.Tensor:
    # torchvision 0.29 marks these decoders deprecated in favour of TorchCodec (a DeprecationWarning, hidden
    # outside tests); they are the fastest here, and PIL takes over should they go (see decode).
    from torchvision.io import ImageReadMode, decode_jpeg

    return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)


def transforms(size: tuple[int, int], channels: int, *, train: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """ImageNet-style transforms on uint8 tensors: random resized crop and flip, or resize and centre crop.

    Validation resizes the short side to size / 0.875 (the usual crop ratio)
    and takes the centre, as the PIL transforms did before (equal within one
    grey level of rounding: tests/train/test_train_images.py).
    """
    from torchvision.transforms import v2

    from cnnspec.train.data import IMAGENET_MEAN, IMAGENET_STD

    h, w = size
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.449,), (0.226,))
    colour = [luma] if channels == 1 else []
    if train:
        geometry = [v2.RandomResizedCrop((h, w), antialias=True), v2.RandomHorizontalFlip()]
    else:
        geometry = [v2.Resize(round(min(h, w) / 0.875), antialias=True), v2.CenterCrop((h, w))]
    return v2.Compose([*colour, *geometry, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def luma(image: torch.Tensor) -> torch.Tensor:
    """A 3 x H x W uint8 RGB image as 1 x H x W grayscale, rounded exactly as PIL's ``convert("L")`` rounds.

    torchvision's Grayscale truncates instead, which moved half of all values
    by one grey level from what the PIL path gave.
    """
    r, g, b = image.to(torch.int32).unbind(0)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8).unsqueeze(0)


def find_files(split: Path) -> tuple[list[str], list[tuple[str, int]], dict[str, list[str]], list[str]]:
    """Classes, ``(path, label)`` samples, the class folders' images and the files left out of ``split``.

    Classes are the sorted sub-folders; a class's images are found
    recursively, sorted, as torchvision's ImageFolder does.
    """
    classes = sorted(e.name for e in os.scandir(split) if e.is_dir() and not e.name.startswith("."))
    samples: list[tuple[str, int]] = []
    per_class: dict[str, list[str]] = {}
    ignored: list[str] = []
    for label, name in enumerate(classes):
        found = per_class.setdefault(name, [])
        for folder, dirs, files in sorted(os.walk(split / name, followlinks=True)):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for file in sorted(files):
                path = os.path.join(folder, file)
                if file.startswith(".") or os.path.splitext(file)[1].lower() not in IMAGE_SUFFIXES:
                    ignored.append(path)
                else:
                    found.append(path)
                    samples.append((path, label))
    return classes, samples, per_class, ignored


def check_file(path: str) -> str | None:
    """Why ``path`` is not a usable image, from its size and first and last bytes, or None if it looks whole.

    A JPEG, PNG or GIF without its end marker is decoded in full to tell a
    truncated file (refused) from one with bytes after the image (accepted):
    that costs a decode only for the rare suspect files.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(16)
            f.seek(max(0, size - 16))
            tail = f.read(16)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "is empty (0 bytes)"
    kind = _kind(head)
    if kind is None:
        return "is not an image (its first bytes are not those of a JPEG, PNG, GIF, WebP, BMP, TIFF or PNM file)"
    ends = {"JPEG": tail.rstrip(b"\0").endswith(b"\xff\xd9"), "PNG": b"IEND" in tail, "GIF": tail.endswith(b";")}
    if not ends.get(kind, True):
        try:
            _full_decode(path)
        except Exception as exc:  # PIL raises many types for damaged data
            return f"is a damaged or truncated {kind} ({_reason(exc)})"
    return None


def _full_decode(path: str) -> None:
    from PIL import Image

    with Image.open(path) as im:
        im.load()


def _kind(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"II*\0", b"MM\0*")):
        return "TIFF"
    if len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"123456":
        return "PNM"
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace("\\", "/")[:200]


def check_files(paths: Iterable[str], *, threads: int = 16) -> list[tuple[str, str]]:
    """``(path, why)`` for each of ``paths`` that :func:`check_file` refuses, in order.

    Threads overlap the small reads' latency (network file systems); the work
    per file is a few system calls.
    """
    paths = list(paths)
    chunks = [paths[i : i + 512] for i in range(0, len(paths), 512)]

    def check_chunk(chunk: list[str]) -> list[tuple[str, str]]:
        return [(p, why) for p in chunk if (why := check_file(p)) is not None]

    if len(chunks) <= 1:
        return [bad for chunk in chunks for bad in check_chunk(chunk)]
    with ThreadPoolExecutor(max_workers=min(threads, len(chunks))) as pool:
        return [bad for found in pool.map(check_chunk, chunks) for bad in found]


def why_undecodable(path: Path) -> str:
    """The reason a file failed to decode in a loader, found again here for the message."""
    try:
        decode(path)
    except Exception as exc:  # as in check_file: PIL raises many types for damaged data
        return _reason(exc)
    return "it failed to decode in a loader process but decodes here; the file may have changed"


def list_names(root: Path, paths: list[str] | list[Path]) -> str:
    """Up to SHOWN of ``paths``, relative to ``root``, comma-separated, then "and N more"."""
    shown = [_relative(root, p) for p in paths[:SHOWN]]
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(shown) + more


def _relative(root: Path, path: str | Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def failed_in_batch(batch: tuple[torch.Tensor, ...] | list[torch.Tensor], data: object) -> list[str]:
    """The files of a loader batch that failed to decode (none for in-memory data's two-tensor batches)."""
    if len(batch) < 3 or not isinstance(data, ImageFiles):
        return []
    failed = batch[2]
    hit = failed >= 0  # on the CPU, where the loader made it: no device synchronisation
    return [data.samples[i][0] for i in failed[hit].tolist()] if bool(hit.any()) else []


def undecodable_error(root: Path, paths: list[str], where: str) -> str:
    """The message for files that failed to decode during training, naming them and what to do."""
    first = f"{_relative(root, paths[0])} cannot be decoded ({why_undecodable(Path(paths[0]))})"
    what = first if len(paths) == 1 else f"{len(paths)} images cannot be decoded ({list_names(root, paths)}); {first}"
    them = "it" if len(paths) == 1 else "them"
    return (
        f"--data imagefolder:{root}: {where}: {what}; remove or replace {them}, or pass --skip-bad-images "
        "to skip such files (counted in each epoch's log)"
    )
