"""Data order: N workers see, step by step, what one process with N times the batch sees.

Each epoch draws one seeded permutation of the whole training set (the same
one :class:`torch.utils.data.DistributedSampler` draws).  Optimizer step ``s``
consumes global batch ``perm[s*G:(s+1)*G]`` with ``G = world * batch * accum``;
worker ``r`` takes every ``world``-th element of it starting at ``r`` and cuts
its share into ``accum`` micro-batches.  Since the gradient of a global batch
is the mean over its samples, how the share is cut does not change it.
Incomplete global batches at the end of an epoch are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import DistributedSampler, Sampler


class GlobalBatchSampler(DistributedSampler):
    """A DistributedSampler aligned to global batches, that can start mid-epoch.

    Call :meth:`set_epoch` before each epoch, as with DistributedSampler, and
    :meth:`set_start_step` to skip the steps a resumed run has already done.
    """

    def __init__(
        self,
        dataset: Sized,
        *,
        num_replicas: int,
        rank: int,
        batch_size: int,
        accum_steps: int = 1,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__(
            dataset,  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=True,
        )
        self.global_batch = num_replicas * batch_size * accum_steps
        self.steps_per_epoch = len(dataset) // self.global_batch
        self.start_step = 0

    def set_start_step(self, step: int) -> None:
        """Begin the current epoch at optimizer step ``step`` (for resuming)."""
        self.start_step = step

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)  # type: ignore[arg-type]
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        begin = self.start_step * self.global_batch
        end = self.steps_per_epoch * self.global_batch
        # begin is a multiple of G, itself a multiple of num_replicas, so the
        # stride below gives each rank its share of every global batch.
        return iter(order[begin:end][self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.global_batch // self.num_replicas


class ShardSampler(Sampler[int]):
    """Every ``num_replicas``-th index from ``rank``, without padding (for evaluation)."""

    def __init__(self, dataset: Sized, *, num_replicas: int, rank: int) -> None:
        self.indices = list(range(rank, len(dataset), num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
