"""Image folders with bad files (issues 25 and 26), and the tensor decoding path against the PIL one.

Every folder is written here with PIL; a damaged file is a real one cut
short, emptied or overwritten, as a failed copy or download leaves it.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from train_helpers import run_cli

import cnnspec
from cnnspec.train import images
from cnnspec.train.errors import UsageError

# torchvision 0.29 marks its decoders deprecated (TorchCodec); cnnspec.train.images says why it uses them.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TINY = """
network Tiny(num_classes = 3) {
    input: 3 x 24 x 24
    conv(4, 3, padding = 1)
    relu
    adaptive_avgpool(1)
    flatten
    linear(num_classes)
}
"""
COLOURS = {"blue": (20, 40, 230), "green": (30, 200, 40), "red": (220, 30, 30)}
QUICK = {"epochs": 1, "batch_size": 4, "progress": "off", "num_workers": 0}


def _picture(rgb: tuple[int, int, int], size: tuple[int, int], seed: int) -> Image.Image:
    """A noisy colour field with some structure (edges for the resize to blur)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    wave = 40 * np.sin(xx / (3 + seed % 5))[..., None] * np.cos(yy / 4)[..., None]
    pixels = np.array(rgb) + wave + rng.normal(0, 15, (h, w, 3))
    return Image.fromarray(pixels.clip(0, 255).astype("uint8"))


def _folder(root: Path, train: int = 4, val: int = 2) -> Path:
    for part, n in (("train", train), ("val", val)):
        for name, rgb in COLOURS.items():
            (root / part / name).mkdir(parents=True)
            for i in range(n):
                _picture(rgb, (30 + i, 27), i).save(root / part / name / f"{i}.jpg", quality=90)
    return root


def _damaged_png(path: Path) -> None:
    """A PNG whose size and end marker are whole but whose pixel data is not: it fails only when decoded."""
    buf = io.BytesIO()
    _picture((200, 30, 30), (30, 27), 7).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    start = data.index(b"IDAT") + 20
    for k in range(start, start + 40):
        data[k] ^= 0x5A
    path.write_bytes(bytes(data))


def _train(root: Path, out: Path, **options: object):
    with redirect_stdout(io.StringIO()) as printed:
        result = cnnspec.train(TINY, data=f"imagefolder:{root}", out=out, **{**QUICK, **options})
    return result, printed.getvalue()


def _cut(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("empty", "is empty (0 bytes)"),
        ("truncated jpeg", "is a damaged or truncated JPEG ("),
        ("truncated png", "is a damaged or truncated PNG ("),
        ("text named .jpg", "is not an image (its first bytes are not those of a JPEG, PNG"),
    ],
)
def test_a_bad_file_is_refused_before_training_naming_it(tmp_path: Path, damage: str, why: str) -> None:
    root = _folder(tmp_path / "imgs")
    bad = root / "train" / "green" / "1.jpg"
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated jpeg":
        _cut(bad, 0.5)
    elif damage == "truncated png":
        bad = bad.with_suffix(".png")
        _picture((30, 200, 40), (30, 27), 1).save(bad)
        _cut(bad, 0.6)
    else:
        bad.write_text("not a picture\n")
    with pytest.raises(UsageError) as caught:
        _train(root, tmp_path / "run")
    message = str(caught.value)
    assert f"imagefolder:{root}: train/green/{bad.name} {why}" in message
    assert "pass --skip-bad-images" in message
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_the_command_line_lists_every_bad_file_without_a_traceback(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    (root / "train" / "red" / "0.jpg").write_bytes(b"")
    _cut(root / "val" / "blue" / "1.jpg", 0.3)
    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    done = run_cli(str(spec), "--data", f"imagefolder:{root}", "--out", str(tmp_path / "run"), "--progress", "off")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        f"cnnspec train: error: --data imagefolder:{root}: 2 bad image files (train/red/0.jpg, val/blue/1.jpg); "
        "train/red/0.jpg is empty (0 bytes); remove or replace them, or pass --skip-bad-images"
    )
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_skip_bad_images_leaves_out_what_the_check_finds_and_says_so(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    (root / "train" / "red" / "0.jpg").write_bytes(b"")
    result, printed = _train(root, tmp_path / "run", skip_bad_images=True)
    assert "11 train / 6 val images" in printed
    assert "warning: --skip-bad-images: left out train/red/0.jpg is empty (0 bytes)" in printed
    assert result.final["bad_images_skipped"] == 0  # none failed later, in the epoch


def test_grayscale_cmyk_and_palette_images_are_read_as_rgb(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    source = _picture((220, 30, 30), (33, 29), 3)
    source.convert("L").save(root / "train" / "red" / "gray.jpg")
    source.convert("CMYK").save(root / "train" / "red" / "cmyk.jpg")
    source.convert("P").save(root / "train" / "red" / "palette.png")
    source.convert("LA").save(root / "val" / "red" / "gray-alpha.png")
    for name in ("gray.jpg", "cmyk.jpg", "palette.png"):
        decoded = images.decode(root / "train" / "red" / name)
        assert decoded.shape == (3, 29, 33) and decoded.dtype == torch.uint8
    cmyk = images.decode(root / "train" / "red" / "cmyk.jpg").float()
    # CMYK is not read as three channels of ink: it keeps the picture's red (within JPEG's loss).
    assert (cmyk[0].mean() - cmyk[2].mean()).item() > 100
    result, printed = _train(root, tmp_path / "run")
    assert "15 train / 7 val images, 3 classes" in printed
    assert len(result.history) == 1


def test_an_image_that_fails_only_when_decoded_stops_the_run_naming_it(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    _damaged_png(root / "train" / "blue" / "bad.png")
    assert images.check_file(str(root / "train" / "blue" / "bad.png")) is None  # the cheap check cannot tell
    with pytest.raises(UsageError) as caught:
        _train(root, tmp_path / "run")
    assert str(caught.value) == (
        f"--data imagefolder:{root}: epoch 1, training: train/blue/bad.png cannot be decoded "
        "(broken data stream when reading image file); remove or replace it, or pass --skip-bad-images "
        "to skip such files (counted in each epoch's log)"
    )
    assert not list((tmp_path / "run").glob("checkpoints/*.pt"))  # stopped before any checkpoint


def test_a_validation_image_that_fails_when_decoded_stops_the_run_after_the_epoch(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    _damaged_png(root / "val" / "red" / "bad.png")
    with pytest.raises(UsageError, match=r": epoch 1, validation: val/red/bad\.png cannot be decoded \(broken data"):
        _train(root, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").read_text()  # the epoch was not recorded


def test_skip_bad_images_counts_files_that_fail_in_the_epoch(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    _damaged_png(root / "train" / "blue" / "bad.png")
    _damaged_png(root / "val" / "green" / "bad.png")
    # One batch of all 13 training images, so every epoch meets the bad one (a sampler drops a partial batch).
    result, printed = _train(root, tmp_path / "run", epochs=2, batch_size=13, skip_bad_images=True)
    assert [h["bad_images_skipped"] for h in result.history] == [2, 2]
    assert "warning: epoch 1: --skip-bad-images skipped 2 images that cannot be decoded: " in printed
    assert "train/blue/bad.png, val/green/bad.png" in printed
    saved = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [s["bad_images_skipped"] for s in saved] == [2, 2]
    # The bad validation image is left out of the figures: 6 images scored, each a whole sixth.
    assert round(result.final["val_top1"] * 6, 6) == round(result.final["val_top1"] * 6)


def test_an_empty_class_folder_in_train_is_an_error_and_in_val_a_warning(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    for f in (root / "val" / "green").iterdir():
        f.unlink()
    (root / "val" / "green" / "notes.txt").write_text("to do\n")
    result, printed = _train(root, tmp_path / "ok")
    assert "warning: no validation images in val/green; validation covers the other classes" in printed
    assert "note: left out 1 file not named as images or hidden (val/green/notes.txt)" in printed
    assert len(result.history) == 1
    for f in (root / "train" / "red").iterdir():
        f.unlink()
    (root / "train" / "red" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    with pytest.raises(UsageError, match=r"no images in class folder train/red \(it holds only files left out: "):
        _train(root, tmp_path / "bad")


@pytest.mark.slow
def test_with_two_workers_a_bad_image_on_one_stops_both_without_a_hang(tmp_path: Path) -> None:
    """gloo DDP, 2 workers: the damaged file lands in one worker's share; both stop at the same sync point."""
    root = _folder(tmp_path / "imgs")
    _damaged_png(root / "train" / "blue" / "bad.png")
    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    common = ("--data", f"imagefolder:{root}", "--batch-size", "2", "--progress", "off", "--num-workers", "1")
    done = run_cli(str(spec), *common, "--out", str(tmp_path / "run"), "--nproc-per-node", "2", timeout=120)
    assert done.returncode == 2, done.stderr
    assert "train/blue/bad.png cannot be decoded (broken data stream" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("cannot be decoded") == 1  # said once, by rank 0

    (root / "val" / "red" / "1.jpg").write_bytes(b"")  # and a check-time failure, found by one worker's share
    done = run_cli(str(spec), *common, "--out", str(tmp_path / "run2"), "--nproc-per-node", "2", timeout=120)
    assert done.returncode == 2, done.stderr
    assert "val/red/1.jpg is empty (0 bytes)" in done.stderr and "Traceback" not in done.stderr

    done = run_cli(
        str(spec),
        *common,
        "--out",
        str(tmp_path / "run3"),
        "--nproc-per-node",
        "2",
        "--epochs",
        "1",
        "--skip-bad-images",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "run3" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["bad_images_skipped"] == 1


@pytest.mark.parametrize("channels", [3, 1])
def test_validation_tensors_match_the_pil_path_within_one_grey_level(tmp_path: Path, channels: int) -> None:
    """The tensor path (torchvision.io decode, tensor resize) against the PIL path it replaced.

    Both decode with libjpeg-turbo to the same pixels; their antialiased
    resizes round differently, so a value may differ by one grey level of the
    uint8 image (1/255 before normalising), and only a small share do (0.07%
    of them measured, for RGB and for grayscale networks alike).
    """
    from torchvision import transforms as T

    from cnnspec.train.data import IMAGENET_MEAN, IMAGENET_STD

    rng = np.random.default_rng(0)
    folder = tmp_path / "jpegs"
    folder.mkdir()
    paths = []
    for i in range(12):
        size = (int(rng.integers(40, 120)), int(rng.integers(40, 120)))
        path = folder / f"{i}.jpg"
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        _picture(colour, size, i).save(path, quality=85)  # type: ignore[arg-type]
        paths.append(path)
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.449,), (0.226,))
    grey = [T.Grayscale(num_output_channels=1)] if channels == 1 else []
    old = T.Compose([*grey, T.Resize(round(32 / 0.875)), T.CenterCrop((32, 32)), T.ToTensor(), T.Normalize(mean, std)])
    new = images.transforms((32, 32), channels, train=False)
    scale = torch.tensor(std)[:, None, None] * 255
    worst, differing, total = 0.0, 0, 0
    for path in paths:
        with Image.open(path) as im:
            before = old(im.convert("RGB"))
        after = new(images.decode(path))
        assert after.shape == before.shape == (channels, 32, 32)
        levels = ((after - before) * scale).abs()  # back to grey levels of the uint8 image
        worst = max(worst, levels.max().item())
        differing += int((levels > 0.5).sum())
        total += levels.numel()
    assert worst <= 1.0 + 1e-3
    assert differing / total < 0.01
