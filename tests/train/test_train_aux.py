"""Auxiliary outputs in training: their weighted losses are added to the main one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from train_helpers import initial_weights, load_weights

from cnnspec.train import cli
from cnnspec.train.errors import TrainError
from cnnspec.train.loop import training_loss

AUX_SPEC = """\
network AuxNet(weight = 0.3) {
    input: 1 x 16 x 16
    conv1: conv(8, 3, padding = 1)
    relu
    maxpool(2)
    aux(weight = weight) { side: { flatten; fc: linear(10) } }
    conv2: conv(8, 3, padding = 1)
    relu
    flatten
    fc: linear(10)
}
"""


def test_training_loss_adds_each_auxiliary_loss_times_its_weight() -> None:
    torch.manual_seed(0)
    main, aux1, aux2 = torch.randn(3, 4, 10).unbind(0)
    y = torch.tensor([1, 2, 3, 4])
    ce = nn.CrossEntropyLoss()
    got = training_loss((main, aux1, aux2), y, ce, [0.3, 0.5])
    expected = ce(main, y) + 0.3 * ce(aux1, y) + 0.5 * ce(aux2, y)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(training_loss(main, y, ce, []), ce(main, y))


def test_training_loss_refuses_a_model_that_drops_its_auxiliary_outputs() -> None:
    out = torch.randn(4, 10)
    with pytest.raises(TrainError, match="declares 1 auxiliary outputs but returned one output"):
        training_loss(out, torch.zeros(4, dtype=torch.long), nn.CrossEntropyLoss(), [0.3])


@pytest.mark.slow
@pytest.mark.parametrize("weight", [0.3, 0.0])
def test_the_auxiliary_head_learns_only_through_its_weighted_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], weight: float
) -> None:
    """One epoch on digits without weight decay: the side head moves iff its loss has a weight.

    Without the auxiliary loss the side head would get no gradient at all, and
    with weight 0 it gets a zero one; either way SGD leaves it where it started.
    """
    spec = tmp_path / "auxnet.cnn"
    spec.write_text(AUX_SPEC)
    out = tmp_path / "run"
    code = cli.main([
        str(spec), "--set", f"weight={weight}", "--data", "digits", "--epochs", "1", "--batch-size", "64",
        "--weight-decay", "0", "--progress", "off", "--seed", "3", "--out", str(out),
    ])
    assert code == 0, capsys.readouterr().err
    initial = initial_weights(spec, seed=3, weight=weight)
    trained = load_weights(out / "model.safetensors")
    assert not torch.equal(trained["fc.weight"], initial["fc.weight"])  # the main head always learns
    side_moved = not torch.equal(trained["side.fc.weight"], initial["side.fc.weight"])
    assert side_moved == (weight > 0)
