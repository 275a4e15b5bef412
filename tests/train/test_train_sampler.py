"""N workers with batch B see, step by step, the samples one process with batch N*B sees; in-memory
sets are gathered into the batches a DataLoader would give."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from cnnspec.train import data
from cnnspec.train.sampler import GlobalBatchSampler, ShardSampler


def _steps(n: int, world: int, batch: int, accum: int, epoch: int = 0, start: int = 0) -> list[list[set[int]]]:
    """Per optimizer step, the set of indices each rank consumes."""
    per_rank = []
    for rank in range(world):
        s = GlobalBatchSampler(range(n), num_replicas=world, rank=rank, batch_size=batch, accum_steps=accum, seed=3)
        s.set_epoch(epoch)
        s.set_start_step(start)
        idx = list(s)
        assert len(idx) == len(s)
        share = batch * accum
        per_rank.append([set(idx[i : i + share]) for i in range(0, len(idx), share)])
    return [list(step) for step in zip(*per_rank, strict=True)]


@pytest.mark.parametrize(("world", "batch", "accum"), [(2, 32, 1), (4, 16, 1), (2, 16, 2), (3, 7, 3)])
def test_same_global_batches_as_one_process(world: int, batch: int, accum: int) -> None:
    n = 1437
    one = _steps(n, 1, world * batch * accum, 1, epoch=2)
    many = _steps(n, world, batch, accum, epoch=2)
    assert len(one) == len(many) == n // (world * batch * accum)
    for step_one, step_many in zip(one, many, strict=True):
        shares = step_many
        assert set().union(*shares) == step_one[0]
        assert sum(len(s) for s in shares) == len(step_one[0])  # no sample twice


def test_epochs_differ_and_start_step_skips() -> None:
    assert _steps(500, 2, 10, 1, epoch=0) != _steps(500, 2, 10, 1, epoch=1)
    full = _steps(500, 2, 10, 1, epoch=4)
    assert _steps(500, 2, 10, 1, epoch=4, start=7) == full[7:]


@pytest.mark.parametrize("source", ["digits", "synthetic:300"])
@pytest.mark.parametrize(("world", "rank", "batch", "accum", "start"), [(1, 0, 32, 1, 0), (2, 1, 16, 2, 3)])
def test_tensor_batches_are_the_data_loaders(
    source: str, world: int, rank: int, batch: int, accum: int, start: int
) -> None:
    """Batches gathered from an in-memory set equal a DataLoader's, element for element: in training
    order (a resumed epoch included) and in evaluation, whose last batch is short."""
    ds = data.load(source, input_shape=(1, 16, 16), num_classes=10)
    sampler = GlobalBatchSampler(ds.train, num_replicas=world, rank=rank, batch_size=batch, accum_steps=accum, seed=5)
    sampler.set_epoch(2)
    sampler.set_start_step(start)
    val = ShardSampler(ds.val, num_replicas=world, rank=rank)
    assert isinstance(ds.train, data.TensorImages) and isinstance(ds.val, data.TensorImages)
    pairs = [
        (data.TensorBatches(ds.train, sampler, batch), DataLoader(ds.train, batch_size=batch, sampler=sampler)),
        (data.TensorBatches(ds.val, val, batch), DataLoader(ds.val, batch_size=batch, sampler=val)),
    ]
    for gathered, loader in pairs:
        got, expected = list(gathered), list(loader)
        assert len(got) == len(expected) == len(gathered) == len(loader) > 0
        for (x, y), (x_ref, y_ref) in zip(got, expected, strict=True):
            assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    assert len(got[-1][1]) < batch  # these validation sets end in a short batch


def test_synthetic_train_and_val_share_one_pool_on_the_device() -> None:
    """The pool of images both synthetic sets cycle through is moved to the device once (the meta
    device stands in for a GPU: each move there makes a new tensor, as a move to CUDA does)."""
    ds = data.load("synthetic:300", input_shape=(3, 8, 8), num_classes=10)
    assert isinstance(ds.train, data.TensorImages) and isinstance(ds.val, data.TensorImages)
    train, val = data.on_device([ds.train, ds.val], "meta")
    assert train.images.device.type == val.labels.device.type == "meta"
    assert train.images is val.images
    assert train.labels is not val.labels and len(val.labels) == len(ds.val.labels)
