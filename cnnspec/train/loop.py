"""The training loop: one flat, readable DDP loop (in the spirit of nanoGPT's train.py).

Every worker runs this same function; torchrun (or the test harness) tells
each one its rank through the environment.  Rank 0 alone prints and writes
files; the others compute and take part in the collectives.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from cnnspec.train import checkpoint, data, device_images, distributed, faults, images, rundir, runlog, stopping
from cnnspec.train.config import TrainConfig
from cnnspec.train.errors import Interrupted, TrainError, UsageError
from cnnspec.train.model import ModelSource
from cnnspec.train.optim import build_optimizer
from cnnspec.train.progress import Progress
from cnnspec.train.schedule import build_schedule
from cnnspec.train.signals import stop_on_signals


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    out: Path
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    model_path: Path | None = None
    checkpoint_path: Path | None = None

    @property
    def final(self) -> dict[str, Any]:
        """The metrics of the last epoch (empty if none finished)."""
        return self.history[-1] if self.history else {}


def run(config: TrainConfig, source: ModelSource, out: Path, plan: rundir.Plan) -> TrainResult:
    """Train ``source`` as ``config`` says, writing into ``out``; every worker calls this."""
    env = distributed.setup(config.device)
    try:
        with stop_on_signals() as stop:
            if config.pipeline is not None or config.shard:
                from cnnspec.train import pipeline_loop

                return pipeline_loop.run(config, source, out, plan, env, stop)
            return _train(config, source, out, plan, env, stop)
    finally:
        distributed.teardown()


def _train(config, source, out, plan, env, stop) -> TrainResult:
    device, rank, world = env.device, env.rank, env.world_size
    say = runlog.printer(env.is_main)
    fault = faults.from_env()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels

    # ----- data (first: a mismatch with the spec is refused before any work) ---
    ds, sampler, val_sampler = data.for_training(config, source, rank=rank, world=world, replicas=world, replica=rank)
    global_batch, steps_per_epoch = sampler.global_batch, sampler.steps_per_epoch
    # Seeds the DataLoader's worker processes (reseeded each epoch); in-memory batches need none.
    loader_gen: torch.Generator | None = None
    device_stage: device_images.DeviceImages | None = None  # the device path's training augmentation
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    train_loader: Iterable[tuple[torch.Tensor, torch.Tensor]]
    val_loader: Iterable[tuple[torch.Tensor, torch.Tensor]]
    if isinstance(ds.train, data.TensorImages) and isinstance(ds.val, data.TensorImages):
        # Held on the device and gathered there: the same batches a DataLoader would give.
        train_set, val_set = data.on_device([ds.train, ds.val], device)
        train_loader = data.TensorBatches(train_set, sampler, config.batch_size)
        val_loader = data.TensorBatches(val_set, val_sampler, config.batch_size)
    else:
        workers = config.num_workers
        if workers is None:
            workers = min(8, max(1, (_cpu_count() // env.local_world_size) - 1))
        loader_kw: dict[str, Any] = {
            "num_workers": workers,
            "pin_memory": device.type == "cuda",
            "persistent_workers": workers > 0,
        }
        loader_gen = torch.Generator()
        on_device = config.image_pipeline == "device" or (config.image_pipeline == "auto" and device.type == "cuda")
        if on_device and isinstance(ds.train, images.ImageFiles) and isinstance(ds.val, images.ImageFiles):
            # The workers read files (JPEGs stay bytes); decoding and augmentation happen on the device.
            c, h, w = ds.train.shape
            stages = [
                device_images.DeviceImages((h, w), c, train=train, device=device, dtype=amp_dtype or torch.float32,
                                           memory_format=memory_format)
                for train in (True, False)
            ]
            device_stage = stages[0]
            raw_kw = {**loader_kw, "collate_fn": device_images.collate_raw}
            train_loader = device_images.Prefetcher(
                DataLoader(device_images.RawImageFiles(ds.train), batch_size=config.batch_size, sampler=sampler,
                           generator=loader_gen, **raw_kw), stages[0])
            val_loader = device_images.Prefetcher(
                DataLoader(device_images.RawImageFiles(ds.val), batch_size=config.batch_size, sampler=val_sampler,
                           **raw_kw), stages[1])
        else:
            train_loader = DataLoader(
                ds.train, batch_size=config.batch_size, sampler=sampler, generator=loader_gen, **loader_kw
            )
            val_loader = DataLoader(ds.val, batch_size=config.batch_size, sampler=val_sampler, **loader_kw)

    # ----- model -----------------------------------------------------------
    torch.manual_seed(config.seed)  # same initial weights on every worker
    raw_model: nn.Module = source.build().to(device)
    if config.channels_last:
        raw_model = raw_model.to(memory_format=torch.channels_last)
    if config.sync_bn and env.distributed:
        raw_model = nn.SyncBatchNorm.convert_sync_batchnorm(raw_model)
    model: nn.Module = torch.compile(raw_model) if config.compile else raw_model
    if env.distributed:
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    n_params = sum(p.numel() for p in raw_model.parameters())

    # ----- optimisation ----------------------------------------------------
    schedule = build_schedule(config, global_batch=global_batch, steps_per_epoch=steps_per_epoch)
    optimizer = build_optimizer(raw_model, config, schedule.peak_lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.factor)
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    aux_weights = [float(w) for w in getattr(raw_model, "aux_weights", [])]

    def autocast() -> contextlib.AbstractContextManager:
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    # ----- where to start --------------------------------------------------
    epoch, start_step, global_step = 0, 0, 0
    carried = {"loss_sum": 0.0, "seen": 0}  # train-loss sums of a partly done epoch
    history: list[dict[str, Any]] = []
    if plan.resume_from is not None:
        state = checkpoint.load(plan.resume_from)
        try:
            raw_model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:  # a spec or an import changed since
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"--resume: {plan.resume_from.name} does not fit this network ({first[:200]}); the spec "
                f"changed since the run was made: resume with the run's copy ({out / rundir.SPEC_FILENAME}), "
                "or start over with --force"
            ) from None
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        epoch, start_step, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        carried = state["partial"]
        history = list(state["history"])
        start_step = checkpoint.resumed_step(state, global_batch=global_batch, steps_per_epoch=steps_per_epoch,
                                             say=say)
        checkpoint.restore_rng(state["rng"], rank=rank, world=world)
    else:
        torch.manual_seed(config.seed + rank)  # distinct randomness (dropout) per worker

    stop_epoch = min(config.epochs, config.stop_after or config.epochs)
    metrics_path = out / rundir.METRICS_FILENAME
    distributed.barrier()  # every worker has read the directory before rank 0 changes it
    tb = None
    run_lock = None
    if env.is_main:
        # Before anything in out changes; held until this function returns.
        run_lock = rundir.start(out, plan, config, source.spec_text, history)
        tb = runlog.tensorboard(config, out, say)
        backend = env.backend if env.distributed else "single process"
        setup = [
            f"  device {device} x {world} worker{'s' if world > 1 else ''} ({backend}), "
            f"precision {config.precision}{', channels_last' if config.channels_last else ''}"
            f"{', torch.compile' if config.compile else ''}",
            f"  effective batch {global_batch} = {config.batch_size} per device x {world} workers "
            f"x {config.accum_steps} accumulation steps",
        ]
        runlog.describe_run(say, config=config, source=source, n_params=n_params, ds=ds, setup=setup,
                            schedule=schedule, global_batch=global_batch, plan=plan, epoch=epoch,
                            start_step=start_step)

    def save_checkpoint(ep: int, step_in_epoch: int, partial: dict[str, Any]) -> Path | None:
        # Collective: every worker hands over its RNG state; rank 0 writes.
        rngs = distributed.gather_objects(checkpoint.rng_state())
        if not env.is_main:
            return None
        state = checkpoint.run_state(
            {"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            scaler=scaler, rngs=rngs, epoch=ep, step_in_epoch=step_in_epoch, global_step=global_step,
            global_batch=global_batch, world_size=world, partial=partial, history=history, config=config,
        )
        return checkpoint.save(out, state, global_step=global_step, epoch=ep, keep=config.keep_checkpoints)

    last_ckpt = plan.resume_from
    progress = Progress(enabled=env.is_main and config.progress != "off", force=config.progress == "on")

    # ----- the loop --------------------------------------------------------
    while epoch < stop_epoch:
        sampler.set_epoch(epoch)
        sampler.set_start_step(start_step)
        if loader_gen is not None:
            loader_gen.manual_seed(config.seed * 100_003 + epoch)  # loader-process seeds depend on the epoch only
        if device_stage is not None:
            device_stage.reseed((config.seed * 100_003 + epoch) * 65_537 + rank)  # each worker its own crops
        model.train()
        loss_sum = torch.tensor(carried["loss_sum"], device=device, dtype=torch.float64)
        seen = carried["seen"]
        bad = torch.zeros((), dtype=torch.bool, device=device)
        undecodable: set[str] = set()  # this worker's training files that failed to decode this epoch
        batches = iter(train_loader)
        bar = progress.epoch(epoch, config.epochs, steps_per_epoch, start_step)
        t0, images_done = time.perf_counter(), 0
        window = runlog.LossWindow(global_batch=global_batch)

        for step_in_epoch in range(start_step, steps_per_epoch):
            if fault is not None:
                fault.before_step(global_step, rank)
            for micro in range(config.accum_steps):
                batch = next(batches)
                undecodable.update(images.failed_in_batch(batch, ds.train))  # the loader put another image there
                x, y = batch[0], batch[1]
                x = x.to(device, non_blocking=True, memory_format=memory_format)
                y = y.to(device, non_blocking=True)
                # Only the last micro-batch all-reduces gradients; the others just accumulate.
                accumulating = env.distributed and micro < config.accum_steps - 1
                sync = model.no_sync() if accumulating else contextlib.nullcontext()
                with sync:
                    with autocast():
                        loss = training_loss(model(x), y, criterion, aux_weights)
                    if fault is not None and fault.kind == "nan" and fault.fires(global_step, rank):
                        loss = loss * float("nan")
                    scaler.scale(loss / config.accum_steps).backward()
                loss_d = loss.detach()
                loss_sum += loss_d.double() * y.shape[0]
                bad |= ~torch.isfinite(loss_d)
                window.add(loss_d)
                seen += y.shape[0]
            if config.clip_grad_norm is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(raw_model.parameters(), config.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            global_step += 1
            images_done += global_batch
            bar.update()
            window.step()

            last = step_in_epoch == steps_per_epoch - 1
            ckpt_due = config.checkpoint_every > 0 and global_step % config.checkpoint_every == 0 and not last
            local_stop = not env.distributed and stop.requested  # one worker: no need to agree
            if not (global_step % config.log_every == 0 or ckpt_due or last or local_stop):
                continue
            # A sync point: agree across workers whether to stop (non-finite loss, Ctrl-C, an image that failed).
            interrupt = stopping.agree_to_stop(
                bad=bad, stop=stop, undecodable=undecodable, skip_bad_images=config.skip_bad_images, ds=ds, bar=bar,
                epoch=epoch, global_step=global_step, last_ckpt=last_ckpt,
                hint="Try a lower --base-lr, --clip-grad-norm, or bf16 instead of fp16.",
            )
            if interrupt or ckpt_due:
                partial = {"loss_sum": float(loss_sum.item()), "seen": seen}
                last_ckpt = save_checkpoint(epoch, step_in_epoch + 1, partial) or last_ckpt
                if interrupt:
                    stopping.interrupted(bar, say, stop, last_ckpt, f"epoch {epoch + 1}, step {step_in_epoch + 1}")
            window.show(bar, scheduler.get_last_lr()[0])
        bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_time = time.perf_counter() - t0

        # ----- end of epoch: aggregate, evaluate, record, checkpoint --------
        totals = torch.tensor([loss_sum.item(), float(seen), float(len(undecodable))], dtype=torch.float64,
                              device=device)
        distributed.all_reduce(totals)
        # Evaluate the module inside DDP: DDP's forward could start collectives
        # (buffer broadcasts), and workers may hold different numbers of val batches.
        val_undecodable: set[str] = set()
        val = evaluate(model.module if env.distributed else model, val_loader, device, memory_format, autocast,
                       undecodable=val_undecodable, dataset=ds.val)
        if val["undecodable"] > 0 and not config.skip_bad_images:
            stopping.refuse_undecodable(ds, val_undecodable, f"epoch {epoch + 1}, validation")
        skipped: list[str] = []
        if totals[2].item() > 0 or val["undecodable"] > 0:  # every worker sees the same sums: all gather or none
            skipped = sorted({p for part in distributed.gather_objects(sorted(undecodable | val_undecodable))
                              for p in part})
        epoch += 1
        record = runlog.epoch_record(epoch=epoch, step=global_step, totals=totals, val=val,
                                     lr=scheduler.get_last_lr()[0], images=images_done, train_time=train_time)
        if config.skip_bad_images:
            record["bad_images_skipped"] = len(skipped)
        history.append(record)
        if env.is_main:
            warnings = []
            if skipped:
                root = ds.train.root if isinstance(ds.train, images.ImageFiles) else Path(".")
                warnings.append(f"warning: epoch {epoch}: --skip-bad-images skipped {len(skipped)} image"
                                f"{'s' if len(skipped) > 1 else ''} that cannot be decoded: "
                                f"{images.list_names(root, skipped)}")
            runlog.report_epoch(record, epochs=config.epochs, say=say, metrics_path=metrics_path, tb=tb,
                                warnings=warnings)
        start_step, carried = 0, {"loss_sum": 0.0, "seen": 0}
        stopping.check_epoch_loss(record, last_ckpt)
        last_ckpt = save_checkpoint(epoch, 0, carried) or last_ckpt
        if stop.requested:
            raise Interrupted(f"interrupted after epoch {epoch}; continue with --resume")

    model_path = None
    if env.is_main:
        model_path = out / rundir.MODEL_FILENAME
        checkpoint.save_safetensors(raw_model.state_dict(), model_path)
        runlog.report_finish(say, epoch=epoch, epochs=config.epochs, model_path=model_path, tb=tb)
    distributed.barrier()
    if run_lock is not None:  # an early exit (an error) closes it as the function's frame goes
        run_lock.close()
    return TrainResult(out=out, epochs_done=epoch, history=history, model_path=model_path, checkpoint_path=last_ckpt)


def training_loss(
    out: torch.Tensor | tuple[torch.Tensor, ...],
    y: torch.Tensor,
    criterion: nn.Module,
    aux_weights: list[float],
) -> torch.Tensor:
    """The loss to minimise: the main output's, plus each auxiliary output's times its weight.

    A spec with auxiliary heads (GoogLeNet's, Inception-v3's) compiles to a
    module that returns (main, *aux) in training mode; their weights come from
    the spec's `aux(weight = w)`.
    """
    if not aux_weights:
        return criterion(out, y)
    if not isinstance(out, (tuple, list)) or len(out) != 1 + len(aux_weights):
        got = f"{len(out)} outputs" if isinstance(out, (tuple, list)) else "one output"
        raise TrainError(f"the model declares {len(aux_weights)} auxiliary outputs but returned {got} in training")
    main, *aux = out
    loss = criterion(main, y)
    for w, a in zip(aux_weights, aux, strict=True):
        loss = loss + w * criterion(a, y)
    return loss


@torch.no_grad()
def evaluate(model, loader, device, memory_format, autocast, undecodable=None, dataset=None) -> dict[str, float]:
    """Loss, top-1 and top-5 over the whole validation set, summed across workers.

    Samples that a loader marks as failed to decode (a third tensor, >= 0 for
    them) are left out of the figures and counted (the result's
    ``undecodable``, over all workers); this worker's files of them are added
    to the set ``undecodable``.
    """
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top1, top5, count
    bad_count = 0
    for batch in loader:
        x, y = batch[0], batch[1]
        if len(batch) > 2 and bool((batch[2] >= 0).any()):  # on the CPU: no device synchronisation
            keep = batch[2] < 0
            bad_count += int((~keep).sum())
            if undecodable is not None:
                undecodable.update(images.failed_in_batch(batch, dataset))
            x, y = x[keep], y[keep]
            if y.numel() == 0:
                continue
        x = x.to(device, non_blocking=True, memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        with autocast():
            logits = model(x)
        sums += batch_scores(logits.float(), y)
    return val_figures(sums, bad_count)


def batch_scores(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One validation batch's summed loss, top-1 hits, top-5 hits and size (float64, to be summed)."""
    k = min(5, logits.shape[1])
    hit = logits.topk(k, dim=1).indices.eq(y[:, None])
    return torch.stack([
        F.cross_entropy(logits, y, reduction="sum").double(),
        hit[:, 0].sum().double(),
        hit.any(dim=1).sum().double(),
        torch.tensor(float(y.shape[0]), dtype=torch.float64, device=logits.device),
    ])


def val_figures(sums: torch.Tensor, bad_count: int) -> dict[str, float]:
    """The validation figures from this worker's :func:`batch_scores` sums and undecodable count (a collective)."""
    sums = torch.cat([sums, torch.tensor([float(bad_count)], dtype=torch.float64, device=sums.device)])
    distributed.all_reduce(sums)
    loss, top1, top5, count, undecodable = sums.tolist()
    count = max(count, 1.0)
    return {"loss": loss / count, "top1": top1 / count, "top5": top5 / count, "undecodable": undecodable}


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
