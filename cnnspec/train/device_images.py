"""Image folders decoded and augmented on the training device (issue 26).

The loader's worker processes only read files: a JPEG travels as its bytes
(a 1-D uint8 tensor, several times smaller than the decoded image), any other format is
decoded there by PIL into a 3 x H x W uint8 image. The training process then
prepares each batch on the device:

- JPEGs are decoded in one call, ``torchvision.io.decode_jpeg(list,
  device=...)`` (nvJPEG on CUDA); a file it refuses is decoded on the CPU
  (torchvision, then PIL) and moved over as uint8, and one nothing decodes
  is marked failed, as :class:`cnnspec.train.images.ImageFiles` marks it;
- training: random resized crop (antialiased bilinear, in float) and
  horizontal flip per image, with parameters drawn on the host from a CPU
  ``torch.Generator`` (no device synchronisation), reseeded per epoch and
  rank by the training loop; validation: resize of the short side to
  size / 0.875 and centre crop with torchvision.transforms.v2.functional on
  uint8, as the worker path does;
- each image written into one batch in its final memory format, then
  scaled and normalised as one batch and handed over in the step's dtype.

The same code runs with ``device="cpu"`` (the tests, and ``--image-pipeline
device`` without a GPU); there it gives the same validation tensors as the
worker path bit for bit, since both call the same torchvision kernels.
:class:`Prefetcher` prepares the next batch while the step runs: on CUDA on a
side stream, on the CPU in turn.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset

from cnnspec.train import images

#: A batch as the loader's workers collate it: payloads (JPEG bytes or decoded uint8 images, an empty tensor
#: for a file that could not be read), labels and the samples' indices.
RawBatch = tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]

SCALE = (0.08, 1.0)  # RandomResizedCrop's defaults, as the worker path uses them
RATIO = (3 / 4, 4 / 3)


class RawImageFiles(Dataset):
    """The files of an :class:`~cnnspec.train.images.ImageFiles` as ``(payload, label, index)`` samples.

    ``payload`` is a JPEG's bytes, any other image decoded to 3 x H x W uint8
    (PIL, converted to RGB), or an empty tensor when the file cannot be read
    or decoded (the device stage marks it failed).
    """

    def __init__(self, files: images.ImageFiles) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        label = self.files.samples[i][1]
        try:
            data = self.files.path(i).read_bytes()
        except OSError:
            return _empty(), label, i
        if images._tensor_decodable(data):
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), label, i
        try:
            return decode_pil_bytes(data), label, i
        except Exception:  # PIL raises many types for damaged data
            return _empty(), label, i


def _empty() -> torch.Tensor:
    return torch.empty(0, dtype=torch.uint8)


def collate_raw(samples: list[tuple[torch.Tensor, int, int]]) -> RawBatch:
    """A batch of :class:`RawImageFiles` samples: the payloads as a list (their sizes differ)."""
    payloads = [p for p, _, _ in samples]
    labels = torch.tensor([label for _, label, _ in samples], dtype=torch.long)
    index = torch.tensor([i for _, _, i in samples], dtype=torch.long)
    return payloads, labels, index


def decode_pil_bytes(data: bytes) -> torch.Tensor:
    """An encoded image decoded by PIL, converted to RGB, as a 3 x H x W uint8 tensor."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1).contiguous()


def decode_batch(payloads: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """Each payload as a 3 x H x W uint8 RGB image on ``device``, or None where nothing decodes it.

    JPEG bytes go to ``decode_jpeg`` in one batch; when the batch call fails
    (one file nvJPEG refuses, a CMYK JPEG on some versions) each file is tried
    alone, then on the CPU. Already decoded images are copied over (from
    pinned memory, without waiting).
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    out: list[torch.Tensor | None] = [None] * len(payloads)
    jpegs = [k for k, p in enumerate(payloads) if p.dim() == 1 and p.numel() > 0]
    for k, p in enumerate(payloads):
        if p.dim() == 3:
            out[k] = p.to(device, non_blocking=True)
    if not jpegs:
        return out
    try:
        decoded = decode_jpeg([payloads[k] for k in jpegs], mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        decoded = [_decode_one(payloads[k], device) for k in jpegs]
    for k, image in zip(jpegs, decoded, strict=True):
        out[k] = image
    return out


def _decode_one(payload: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    from torchvision.io import ImageReadMode, decode_jpeg

    if device.type != "cpu":
        try:
            return decode_jpeg(payload, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            pass
    try:
        return decode_jpeg(payload, mode=ImageReadMode.RGB).to(device, non_blocking=True)
    except RuntimeError:
        pass
    try:
        return decode_pil_bytes(payload.numpy().tobytes()).to(device, non_blocking=True)
    except Exception:  # PIL raises many types for damaged data
        return None


def crop_params(height: int, width: int, g: torch.Generator) -> tuple[int, int, int, int]:
    """RandomResizedCrop's ``(top, left, h, w)`` for an image of ``height x width``, drawn from ``g``.

    torchvision's own draws from the global generator; this is its algorithm
    (ten tries, then the centre crop) with the numbers taken from ``g`` on
    the host, so that drawing them never waits for the device.
    """
    area = height * width
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(10):
        u = torch.rand(4, generator=g, dtype=torch.float64).tolist()
        target_area = area * (SCALE[0] + (SCALE[1] - SCALE[0]) * u[0])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            return min(int(u[2] * (height - h + 1)), height - h), min(int(u[3] * (width - w + 1)), width - w), h, w
    in_ratio = width / height
    if in_ratio < RATIO[0]:
        w, h = width, round(width / RATIO[0])
    elif in_ratio > RATIO[1]:
        w, h = round(height * RATIO[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def augment_params(height: int, width: int, g: torch.Generator) -> tuple[int, int, int, int, bool]:
    """:func:`crop_params`, then whether to flip (one chance in two), all from ``g`` on the host."""
    top, left, h, w = crop_params(height, width, g)
    return top, left, h, w, torch.rand((), generator=g).item() < 0.5


class DeviceImages:
    """Raw loader batches to ``(x, y, failed)`` on ``device``: decoded, augmented, normalised.

    ``x`` is N x C x H x W in ``dtype`` and ``memory_format``; ``y`` the
    labels on the device; ``failed`` (on the CPU) -1 per sample, or the
    index of the sample's file where it could not be decoded. In training a
    failed sample is replaced by another image of its batch (with that
    image's label), so batches keep their shape; in validation it is a zero
    image that the evaluation leaves out, as in the worker path.
    """

    def __init__(
        self,
        size: tuple[int, int],
        channels: int,
        *,
        train: bool,
        device: torch.device | str,
        dtype: torch.dtype = torch.float32,
        memory_format: torch.memory_format = torch.channels_last,
    ) -> None:
        from cnnspec.train.data import IMAGENET_MEAN, IMAGENET_STD

        self.size, self.channels, self.train = size, channels, train
        self.device, self.dtype, self.memory_format = torch.device(device), dtype, memory_format
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.449,), (0.226,))
        # On the device once: a tensor made from a list there is a copy from pageable memory, which would make
        # the host wait for the stream's queued work on every batch (v2's normalize makes one each call).
        self.mean = torch.tensor(mean, device=self.device).view(-1, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(-1, 1, 1)
        self.generator = torch.Generator()  # on the CPU: crop and flip parameters are drawn on the host

    def reseed(self, seed: int) -> None:
        """Start the crop and flip parameters afresh (the training loop: per epoch and rank)."""
        self.generator.manual_seed(seed)

    def __call__(self, raw: RawBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch ready for the step."""
        from torchvision.transforms.v2 import functional as TF

        payloads, labels, index = raw
        # Copied first, from the loader's pinned memory: queued without waiting for the decoding queued next.
        y = labels.to(self.device, non_blocking=True)
        decoded = decode_batch(payloads, self.device)
        good = [k for k, image in enumerate(decoded) if image is not None]
        failed = torch.full((len(payloads),), -1, dtype=torch.long)
        if len(good) < len(payloads):  # rare (a bad file): the labels change, and are copied again
            labels = labels.clone()  # not the loader's: the copy above may still be reading it
            for k in range(len(payloads)):
                if decoded[k] is None:
                    failed[k] = index[k]
                    if self.train and good:
                        # The next good image of the batch stands in, with its label: a batch keeps its shape.
                        stand_in = min(good, key=lambda j: (j - k) % len(payloads))
                        decoded[k], labels[k] = decoded[stand_in], labels[stand_in]
            y = labels.to(self.device)
        h, w = self.size
        # Written image by image into one batch in its final layout: no stack, no second copy to channels_last.
        x = torch.empty((len(decoded), self.channels, h, w), device=self.device, memory_format=self.memory_format)
        for k, image in enumerate(decoded):
            if image is None:  # validation, or a training batch with no image that decodes: zeroed below
                continue
            if self.channels == 1:
                image = images.luma(image)
            if self.train:
                # Resized as float, not rounded back to uint8 as v2's resize does on a GPU: fewer kernels an image.
                top, left, ch, cw, flip = augment_params(image.shape[-2], image.shape[-1], self.generator)
                crop = image[None, :, top : top + ch, left : left + cw].float()
                resized = torch.nn.functional.interpolate(
                    crop, size=(h, w), mode="bilinear", antialias=True, align_corners=False
                )[0]
                x[k] = resized.flip(-1) if flip else resized
            else:
                # v2's uint8 resize, as the worker path: the same validation tensors.
                x[k] = TF.center_crop(TF.resize(image, [round(min(h, w) / 0.875)], antialias=True), [h, w])
        x = ((x.mul_(1 / 255) - self.mean) / self.std).to(self.dtype)  # v2's to_dtype and normalize, as they compute
        for k, image in enumerate(decoded):
            if image is None:
                x[k].zero_()  # a zero input, as the worker path gives (the evaluation leaves it out)
        return x, y, failed


class Prefetcher:
    """Batches of ``loader`` prepared by ``stage``, the next one while the current one is in use.

    On CUDA the stage runs on a side stream: the step's stream waits for it
    (``wait_event`` on the batch's event, a device-side wait, not the host's) and the batch's
    tensors are marked as used there (``record_stream``) so that their memory
    is not handed out again too early. The next batch's transfer, decode and
    augmentation are queued before the current batch is handed over, so the
    device does them alongside the step. On the CPU the stage runs in turn.
    """

    def __init__(self, loader: Iterable[RawBatch], stage: DeviceImages) -> None:
        self.loader, self.stage = loader, stage

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        device = self.stage.device
        if device.type != "cuda":
            for raw in self.loader:
                yield self.stage(raw)
            return
        side = torch.cuda.Stream(device)

        def prepare(raw: RawBatch) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.cuda.Event]:
            with torch.cuda.stream(side):
                batch = self.stage(raw)
                done = torch.cuda.Event()
                done.record(side)
            return batch, done

        def hand_over(prepared: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.cuda.Event]) -> Any:
            # Wait for this batch's event, not the side stream: the next batch is already queued there.
            batch, done = prepared
            main = torch.cuda.current_stream(device)
            main.wait_event(done)
            for t in batch:
                if t.device.type == "cuda":
                    t.record_stream(main)
            return batch

        pending = None
        for raw in self.loader:
            ready = prepare(raw)
            if pending is not None:
                yield hand_over(pending)
            pending = ready
        if pending is not None:
            yield hand_over(pending)
