"""The device image pipeline (issue 26): raw bytes from the loader, decode and augmentation on the device.

Everything here runs with device="cpu", the same code that runs on CUDA;
the tests that need a GPU are skipped without one.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_images import _damaged_png, _folder, _picture, _train
from torch.overrides import TorchFunctionMode

from cnnspec.train import device_images, images
from cnnspec.train.errors import UsageError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision 0.29's decoders

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (nvJPEG decoding)")


def _mixed_folder(folder: Path) -> list[Path]:
    """JPEGs and PNGs of several sizes and aspect ratios, RGB, grayscale, palette and CMYK."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    paths = []
    modes = ["RGB", "L", "RGB", "P", "CMYK", "RGB", "L", "RGB"]
    for i, mode in enumerate(modes):
        size = (int(rng.integers(40, 160)), int(rng.integers(30, 120)))  # wide, tall and near square
        picture = _picture(tuple(int(v) for v in rng.integers(0, 255, 3)), size, i).convert(mode)  # type: ignore[arg-type]
        for suffix in (".jpg", ".png"):
            if (mode, suffix) in (("CMYK", ".png"), ("P", ".jpg")):
                continue  # PNG has no CMYK, JPEG no palette
            path = folder / f"{i}-{mode}{suffix}"
            picture.save(path, **({"quality": 85} if suffix == ".jpg" else {}))
            paths.append(path)
    return paths


def _files(paths: list[Path], channels: int, size: int, *, train: bool) -> images.ImageFiles:
    samples = [(str(p), k % 3) for k, p in enumerate(paths)]
    transform = images.transforms((size, size), channels, train=train)
    return images.ImageFiles(
        paths[0].parent, ["a", "b", "c"], samples, transform, shape=(channels, size, size), replace_failed=train
    )


def _raw(files: images.ImageFiles, indices: list[int]) -> device_images.RawBatch:
    return device_images.collate_raw([device_images.RawImageFiles(files)[i] for i in indices])


@pytest.mark.parametrize("channels", [3, 1])
def test_validation_tensors_equal_the_worker_path(tmp_path: Path, channels: int) -> None:
    """Same files, same validation tensors: on the CPU both paths call the same torchvision kernels.

    The worker path decodes in ImageFiles and transforms one image at a
    time; the device path reads bytes, decodes a batch, resizes each image and
    normalises the batch. Measured difference: 0 (bit for bit), for JPEG and
    PNG, RGB, grayscale, palette and CMYK sources, 3- and 1-channel networks.
    """
    paths = _mixed_folder(tmp_path / "imgs")
    files = _files(paths, channels, 32, train=False)
    stage = device_images.DeviceImages((32, 32), channels, train=False, device=CPU)
    x, y, failed = stage(_raw(files, list(range(len(paths)))))
    assert x.shape == (len(paths), channels, 32, 32) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert failed.tolist() == [-1] * len(paths)
    assert y.tolist() == [label for _, label in files.samples]
    expected = torch.stack([files[i][0] for i in range(len(paths))])
    assert torch.equal(x, expected)


def test_training_batches_are_random_crops_in_the_steps_dtype_reproducible_by_seed(tmp_path: Path) -> None:
    paths = _mixed_folder(tmp_path / "imgs")
    files = _files(paths, 3, 24, train=True)
    stage = device_images.DeviceImages((24, 24), 3, train=True, device=CPU, dtype=torch.bfloat16)
    raw = _raw(files, list(range(len(paths))))
    stage.reseed(7)
    first = stage(raw)[0]
    stage.reseed(7)
    again = stage(raw)[0]
    stage.reseed(8)
    other = stage(raw)[0]
    assert first.dtype == torch.bfloat16 and first.shape == (len(paths), 3, 24, 24)
    assert first.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(first, again) and not torch.equal(first, other)
    # Normalised like the worker path: values within the ImageNet-normalised range of 0..255.
    assert first.float().min() >= -2.2 and first.float().max() <= 2.7


def test_training_crops_are_torchvisions_resized_crop_and_flip_within_rounding(tmp_path: Path) -> None:
    """The same crop and flip, done by v2 on uint8 (as the worker path does), agree within one grey level.

    The device path resizes in float where v2's uint8 resize works in fixed point and rounds; measured:
    at most one grey level apart, a quarter of one on average.
    """
    from torchvision.transforms.v2 import functional as TF

    from cnnspec.train.data import IMAGENET_MEAN, IMAGENET_STD

    paths = _mixed_folder(tmp_path / "imgs")
    files = _files(paths, 3, 24, train=True)
    stage = device_images.DeviceImages((24, 24), 3, train=True, device=CPU)
    stage.reseed(3)
    x = stage(_raw(files, list(range(len(paths)))))[0]
    g = torch.Generator().manual_seed(3)
    scale = torch.tensor(IMAGENET_STD)[:, None, None] * 255
    levels = []
    for k, path in enumerate(paths):
        image = images.decode(path)
        top, left, h, w, flip = device_images.augment_params(image.shape[-2], image.shape[-1], g)
        expected = TF.resized_crop(image, top, left, h, w, [24, 24], antialias=True)
        expected = TF.horizontal_flip(expected) if flip else expected
        expected = TF.normalize(TF.to_dtype(expected, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)
        levels.append(((x[k] - expected) * scale).abs().flatten())
    apart = torch.cat(levels)
    assert apart.max() <= 1.0 + 1e-3 and apart.mean() <= 0.35


def test_crop_parameters_follow_random_resized_crop() -> None:
    """Area 8-100% of the image and aspect 3/4-4/3 when a try fits, else the centre crop; flips one in two."""
    g = torch.Generator().manual_seed(0)
    flips = 0
    for height, width in [(100, 100), (60, 200), (300, 40), (17, 23)]:
        for _ in range(200):
            top, left, h, w, flip = device_images.augment_params(height, width, g)
            assert 0 <= top <= height - h and 0 <= left <= width - w and h > 0 and w > 0
            if (height, width) == (100, 100):
                assert 0.08 * 0.95 <= h * w / (height * width) <= 1.0
                assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1
            flips += flip
    assert 300 < flips < 500  # of 800


def test_a_file_that_fails_to_decode_is_replaced_in_training_and_zeroed_in_validation(tmp_path: Path) -> None:
    paths = _mixed_folder(tmp_path / "imgs")[:4]
    bad = tmp_path / "imgs" / "bad.png"
    _damaged_png(bad)
    cut = tmp_path / "imgs" / "cut.jpg"
    cut.write_bytes(b"\xff\xd8\xff" + b"\0" * 64)  # a JPEG's first bytes and nothing else
    paths = [paths[0], bad, paths[1], cut]
    for train in (True, False):
        files = _files(paths, 3, 16, train=train)
        stage = device_images.DeviceImages((16, 16), 3, train=train, device=CPU)
        x, y, failed = stage(_raw(files, [0, 1, 2, 3]))
        assert failed.tolist() == [-1, 1, -1, 3]
        assert torch.isfinite(x).all()
        if train:
            assert y.tolist() == [0, 2, 2, 0]  # the next good image stands in, with its label
        else:
            assert y.tolist() == [0, 1, 2, 0] and not x[1].any() and not x[3].any()


def test_one_epoch_through_cnnspec_train_with_the_device_pipeline_on_the_cpu(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    _picture((220, 30, 30), (41, 29), 3).convert("L").save(root / "train" / "red" / "gray.png")
    result, printed = _train(root, tmp_path / "run", image_pipeline="device", num_workers=1)
    assert "13 train / 6 val images, 3 classes" in printed
    assert len(result.history) == 1 and np.isfinite(result.final["train_loss"])
    # Validation sees the same tensors as the worker path, so the same untrained model scores them alike.
    same, _ = _train(root, tmp_path / "workers", image_pipeline="workers", epochs=1, base_lr=1e-12)
    again, _ = _train(root, tmp_path / "device", image_pipeline="device", epochs=1, base_lr=1e-12)
    assert again.final["val_loss"] == pytest.approx(same.final["val_loss"], rel=1e-5)


def test_a_bad_image_mid_epoch_is_named_or_skipped_on_the_device_path(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    _damaged_png(root / "train" / "blue" / "bad.png")
    with pytest.raises(UsageError, match=r"epoch 1, training: train/blue/bad\.png cannot be decoded \(broken data"):
        _train(root, tmp_path / "run", image_pipeline="device")
    _damaged_png(root / "val" / "green" / "bad.png")
    result, _ = _train(root, tmp_path / "skip", image_pipeline="device", batch_size=13, skip_bad_images=True)
    assert result.final["bad_images_skipped"] == 2


#: Tensor methods that make the host wait for a device (on CUDA) to read a value back.
HOST_READS = frozenset({"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy", "nonzero", "cpu"})
#: Functions that read tensors made on the host by design: the crop and flip draws from a CPU generator.
HOST_ONLY = frozenset({"crop_params", "augment_params"})


class HostReads(TorchFunctionMode):
    """Counts reads of tensor values back to the host made by the training loop and the device pipeline.

    On the CPU nothing waits, but every such read in the step would be a
    synchronisation on a GPU; the caller is the first frame outside torch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.where: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if getattr(func, "__name__", "") in HOST_READS:
            frame = sys._getframe(1)
            while frame is not None and f"{Path(torch.__file__).parent}" in frame.f_code.co_filename:
                frame = frame.f_back
            if frame is not None and frame.f_code.co_name not in HOST_ONLY:
                name = Path(frame.f_code.co_filename).name
                if name in ("loop.py", "device_images.py"):
                    self.where[f"{name}:{frame.f_lineno}"] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("pipeline", ["workers", "device"])
def test_no_host_reads_in_the_step_between_logging_points(tmp_path: Path, pipeline: str) -> None:
    """Twice the steps, the same reads: every read back is at a logging point or the epoch's end."""
    counts = []
    for per_class, run in ((4, "short"), (8, "long")):  # 3 and 6 steps of 4 images; one log at the epoch's end
        root = _folder(tmp_path / f"imgs-{run}", train=per_class)
        with HostReads() as reads:
            result, _ = _train(root, tmp_path / run, image_pipeline=pipeline, log_every=1000)
        assert result.history[-1]["step"] == 3 * per_class // 4
        counts.append(reads.where)
    assert counts[0] == counts[1]
    assert sum(counts[0].values()) > 0  # the logging point's reads were seen: the check can fail


@needs_cuda
def test_on_cuda_validation_tensors_are_within_one_grey_level_of_the_cpu_path(tmp_path: Path) -> None:
    """nvJPEG against libjpeg-turbo and CUDA's resize against the CPU's: at most about one grey level apart."""
    paths = _mixed_folder(tmp_path / "imgs")
    files = _files(paths, 3, 64, train=False)
    raw = _raw(files, list(range(len(paths))))
    cpu = device_images.DeviceImages((64, 64), 3, train=False, device=CPU)(raw)[0]
    cuda = device_images.DeviceImages((64, 64), 3, train=False, device="cuda")(raw)[0].cpu()
    from cnnspec.train.data import IMAGENET_STD

    levels = ((cuda - cpu) * torch.tensor(IMAGENET_STD)[:, None, None] * 255).abs()
    assert levels.max() <= 3.0  # decoders' IDCTs and upsampling differ by a level or two at most
    assert levels.mean() <= 0.5


@needs_cuda
def test_on_cuda_the_prefetcher_hands_over_ready_batches_and_training_runs(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    Image.new("RGB", (50, 40), (200, 10, 10)).save(root / "train" / "red" / "plain.png")
    result, printed = _train(
        root,
        tmp_path / "run",
        device="cuda",
        precision="bf16",
        channels_last=True,
        epochs=2,
        num_workers=1,
        image_pipeline="auto",
    )
    assert "device cuda" in printed and len(result.history) == 2
    assert np.isfinite(result.final["train_loss"])
