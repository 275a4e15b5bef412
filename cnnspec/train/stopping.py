"""Where the workers of a run agree to stop: a non-finite loss, a signal (Ctrl-C, SIGTERM), an image that failed.

Both training loops (cnnspec.train.loop, cnnspec.train.pipeline_loop) call
these at the same points, so every worker stops at the same step with the
same message.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch

from cnnspec.train import data, distributed, images
from cnnspec.train.errors import Interrupted, NonFiniteLoss, UsageError
from cnnspec.train.progress import Bar
from cnnspec.train.signals import StopFlag


def agree_to_stop(
    *,
    bad: torch.Tensor,
    stop: StopFlag,
    undecodable: set[str],
    skip_bad_images: bool,
    ds: data.DataSource,
    bar: Bar,
    epoch: int,
    global_step: int,
    last_ckpt: Path | None,
    hint: str,
) -> bool:
    """A sync point (a collective): agree across workers whether to stop, and whether for a signal.

    ``bad`` says whether this worker saw a non-finite loss, ``undecodable``
    holds its training files that failed to decode this epoch. Any worker's
    non-finite loss or (without ``skip_bad_images``) failed image stops every
    worker with the same error; ``hint`` ends the non-finite loss message. The
    result says whether any worker was asked to stop by a signal: the caller
    writes a checkpoint, then calls :func:`interrupted`.
    """
    stop_for_images = bool(undecodable) and not skip_bad_images
    flags = torch.tensor([float(bad.item()), float(stop.requested), float(stop_for_images)], device=bad.device)
    distributed.all_reduce(flags, op="max")
    if flags[2] > 0:
        bar.close()
        refuse_undecodable(ds, undecodable, f"epoch {epoch + 1}, training")
    if flags[0] > 0:
        bar.close()
        where = f" The last good checkpoint is {last_ckpt}." if last_ckpt else " No checkpoint was written yet."
        raise NonFiniteLoss(f"non-finite loss in epoch {epoch + 1} (by step {global_step}); stopping.{where} {hint}")
    return bool(flags[1] > 0)


def interrupted(bar: Bar, say: Callable[[str], None], stop: StopFlag, last_ckpt: Path | None, where: str) -> NoReturn:
    """Stop for a signal after the checkpoint ``last_ckpt`` was written mid-epoch (``where``: the epoch and step)."""
    bar.close()
    say(f"stopped by {stop.signame or 'signal'}: checkpoint {last_ckpt} written; continue with --resume")
    raise Interrupted(f"interrupted at {where}")


def check_epoch_loss(record: dict[str, Any], last_ckpt: Path | None) -> None:
    """Stop if the finished epoch's (all workers') training loss is not finite."""
    if not math.isfinite(record["train_loss"]):
        raise NonFiniteLoss(
            f"non-finite training loss in epoch {record['epoch']}; last good checkpoint {last_ckpt}"
        )


def refuse_undecodable(ds: data.DataSource, mine: set[str], where: str) -> NoReturn:
    """Stop every worker with one message naming the files that failed to decode (a collective)."""
    paths = sorted({p for part in distributed.gather_objects(sorted(mine)) for p in part})
    root = ds.train.root if isinstance(ds.train, images.ImageFiles) else Path(".")
    raise UsageError(images.undecodable_error(root, paths, where))
