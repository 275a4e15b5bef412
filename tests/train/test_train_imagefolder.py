"""--data imagefolder:PATH with torchvision's ImageFolder, and its shape/class checks."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from PIL import Image

import cnnspec
from cnnspec.train.errors import UsageError

TINY = """
network Tiny(num_classes = 10) {
    input: 3 x 24 x 24
    conv(8, 3, padding = 1)
    relu
    adaptive_avgpool(1)
    flatten
    linear(num_classes)
}
"""
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230)}


def _folder(root: Path, per_class: dict[str, int]) -> Path:
    for part, n in per_class.items():
        for name, rgb in COLOURS.items():
            (root / part / name).mkdir(parents=True)
            for i in range(n):
                # Odd sizes on purpose: the transforms must bring them to 24 x 24.
                Image.new("RGB", (30 + i, 27), rgb).save(root / part / name / f"{i}.png")
    return root


def test_imagefolder_trains_and_refuses_wrong_class_count(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", {"train": 8, "val": 2})
    with pytest.raises(UsageError, match="--set num_classes=3"):
        cnnspec.train(TINY, data=f"imagefolder:{root}", out=tmp_path / "bad")
    with redirect_stdout(io.StringIO()) as printed:
        result = cnnspec.train(TINY, data=f"imagefolder:{root}", out=tmp_path / "ok", params={"num_classes": 3},
                               epochs=2, batch_size=4, base_lr=0.4, progress="off")
    assert "24 train / 6 val images, 3 classes" in printed.getvalue()
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert 0.0 <= result.final["val_top1"] <= 1.0
    assert (tmp_path / "ok" / "spec.cnn").read_text() == TINY


def test_imagefolder_needs_train_and_val(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", {"train": 1})
    with pytest.raises(UsageError, match="no val/ folder"):
        cnnspec.train(TINY, data=f"imagefolder:{root}", out=tmp_path / "r", params={"num_classes": 3})
