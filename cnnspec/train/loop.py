"""The training loop: one flat, readable DDP loop (in the spirit of nanoGPT's train.py).

Every worker runs this same function; torchrun (or the test harness) tells
each one its rank through the environment.  Rank 0 alone prints and writes
files; the others compute and take part in the collectives.
"""

from __future__ import annotations

import contextlib
import json
import math
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

from cnnspec.train import checkpoint, data, device_images, distributed, faults, images, rundir
from cnnspec.train.config import CONFIG_FILENAME, TrainConfig, save_config
from cnnspec.train.errors import Interrupted, NonFiniteLoss, TrainError, UsageError
from cnnspec.train.model import ModelSource
from cnnspec.train.optim import build_optimizer
from cnnspec.train.progress import Progress
from cnnspec.train.sampler import GlobalBatchSampler, ShardSampler
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
    say = _printer(env.is_main)
    fault = faults.from_env()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels

    # ----- data (first: a mismatch with the spec is refused before any work) ---
    ds = data.load(
        config.data,
        input_shape=source.input_shape,
        num_classes=source.num_classes,
        val_fraction=config.val_fraction,
        seed=config.data_seed,
    )
    # Every worker checks a share of an image folder's files; all reach the same verdict, so none hangs.
    ds = data.check_images(ds, rank=rank, world=world, gather=distributed.gather_objects, skip=config.skip_bad_images)
    sampler = GlobalBatchSampler(
        ds.train,
        num_replicas=world,
        rank=rank,
        batch_size=config.batch_size,
        accum_steps=config.accum_steps,
        seed=config.seed,
    )
    global_batch, steps_per_epoch = sampler.global_batch, sampler.steps_per_epoch
    if steps_per_epoch == 0:
        raise TrainError(
            f"{ds.name} has {len(ds.train)} training images, fewer than one global batch of {global_batch}; "
            "lower --batch-size or --accum-steps"
        )
    val_sampler = ShardSampler(ds.val, num_replicas=world, rank=rank)
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
        if state["global_batch"] != global_batch:
            say(f"warning: the global batch changed from {state['global_batch']} to {global_batch}")
            start_step = min(steps_per_epoch, start_step * state["global_batch"] // global_batch)
        rng = state["rng"]
        if len(rng) == world:
            checkpoint.set_rng_state(rng[rank])
        elif env.is_main:
            checkpoint.set_rng_state(rng[0])
    else:
        torch.manual_seed(config.seed + rank)  # distinct randomness (dropout) per worker

    stop_epoch = min(config.epochs, config.stop_after or config.epochs)
    metrics_path = out / rundir.METRICS_FILENAME
    distributed.barrier()  # every worker has read the directory before rank 0 changes it
    tb = None
    run_lock = None
    if env.is_main:
        run_lock = rundir.lock(out)  # before anything in out changes; held until this function returns
        if plan.clear:
            rundir.clear_run(out)
        save_config(config, out / CONFIG_FILENAME)
        if source.spec_text is not None:
            (out / rundir.SPEC_FILENAME).write_text(source.spec_text, encoding="utf-8")
        # Keep metrics consistent with the checkpoint we resumed from.
        metrics_path.write_text("".join(json.dumps(h) + "\n" for h in history), encoding="utf-8")
        tb = _tensorboard(config, out, say)

        say(f"cnnspec train: {source.name} ({n_params:,} parameters) on {ds.name}: "
            f"{len(ds.train)} train / {len(ds.val)} val images, {ds.num_classes} classes")
        backend = env.backend if env.distributed else "single process"
        say(f"  device {device} x {world} worker{'s' if world > 1 else ''} ({backend}), "
            f"precision {config.precision}{', channels_last' if config.channels_last else ''}"
            f"{', torch.compile' if config.compile else ''}")
        say(f"  effective batch {global_batch} = {config.batch_size} per device x {world} workers "
            f"x {config.accum_steps} accumulation steps")
        say(f"  learning rate {schedule.peak_lr:.6g} = base {config.base_lr:g} x {global_batch} / "
            f"{config.base_batch} (linear scaling), {config.optimizer}")
        say(f"  schedule: {schedule.describe()}")
        for note in ds.notes:
            say(note)
        for bad in plan.damaged:
            say(f"warning: {bad.name} is damaged (its checksum fails); resuming from an earlier checkpoint")
        if plan.resume_from is not None:
            how = "torchrun restart: resuming" if plan.auto_resumed else "resuming"
            say(f"  {how} from {plan.resume_from.name} (epoch {epoch + 1}, step {start_step})")

    def save_checkpoint(ep: int, step_in_epoch: int, partial: dict[str, Any]) -> Path | None:
        # Collective: every worker hands over its RNG state; rank 0 writes.
        rngs = distributed.gather_objects(checkpoint.rng_state())
        if not env.is_main:
            return None
        state = {
            "model": raw_model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": rngs,
            "epoch": ep,
            "step_in_epoch": step_in_epoch,
            "global_step": global_step,
            "global_batch": global_batch,
            "world_size": world,
            "partial": partial,
            "history": history,
            "config": config.model_dump(mode="json"),
        }
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
        t0, images_done, window_t, window_loss = time.perf_counter(), 0, time.perf_counter(), []

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
                window_loss.append(loss_d)
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

            last = step_in_epoch == steps_per_epoch - 1
            ckpt_due = config.checkpoint_every > 0 and global_step % config.checkpoint_every == 0 and not last
            local_stop = not env.distributed and stop.requested  # one worker: no need to agree
            if not (global_step % config.log_every == 0 or ckpt_due or last or local_stop):
                continue
            # A sync point: agree across workers whether to stop (non-finite loss, Ctrl-C, an image that failed).
            stop_for_images = bool(undecodable) and not config.skip_bad_images
            flags = torch.tensor([float(bad.item()), float(stop.requested), float(stop_for_images)], device=device)
            distributed.all_reduce(flags, op="max")
            if flags[2] > 0:
                bar.close()
                _refuse_undecodable(ds, undecodable, f"epoch {epoch + 1}, training")
            if flags[0] > 0:
                bar.close()
                where = f" The last good checkpoint is {last_ckpt}." if last_ckpt else " No checkpoint was written yet."
                raise NonFiniteLoss(
                    f"non-finite loss in epoch {epoch + 1} (by step {global_step}); stopping.{where} "
                    "Try a lower --base-lr, --clip-grad-norm, or bf16 instead of fp16."
                )
            if flags[1] > 0 or ckpt_due:
                partial = {"loss_sum": float(loss_sum.item()), "seen": seen}
                path = save_checkpoint(epoch, step_in_epoch + 1, partial)
                last_ckpt = path or last_ckpt
                if flags[1] > 0:
                    bar.close()
                    say(f"stopped by {stop.signame or 'signal'}: checkpoint {last_ckpt} written; "
                        f"continue with --resume")
                    raise Interrupted(f"interrupted at epoch {epoch + 1}, step {step_in_epoch + 1}")
            now = time.perf_counter()
            recent = torch.stack(window_loss).float().mean().item()
            rate = len(window_loss) / config.accum_steps * global_batch / max(now - window_t, 1e-9)
            bar.show(loss=recent, lr=scheduler.get_last_lr()[0], rate=rate)
            window_t, window_loss = now, []
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
            _refuse_undecodable(ds, val_undecodable, f"epoch {epoch + 1}, validation")
        skipped: list[str] = []
        if totals[2].item() > 0 or val["undecodable"] > 0:  # every worker sees the same sums: all gather or none
            skipped = sorted({p for part in distributed.gather_objects(sorted(undecodable | val_undecodable))
                              for p in part})
        epoch += 1
        record = {
            "epoch": epoch,
            "step": global_step,
            "train_loss": totals[0].item() / max(totals[1].item(), 1.0),
            "val_loss": val["loss"],
            "val_top1": val["top1"],
            "val_top5": val["top5"],
            "lr": scheduler.get_last_lr()[0],
            "images_per_s": images_done / max(train_time, 1e-9),
            "epoch_time_s": train_time,
        }
        if config.skip_bad_images:
            record["bad_images_skipped"] = len(skipped)
        history.append(record)
        if env.is_main:
            say(f"epoch {epoch:>3}/{config.epochs}  train_loss {record['train_loss']:.4f}  "
                f"val_loss {record['val_loss']:.4f}  top1 {100 * record['val_top1']:.2f}%  "
                f"top5 {100 * record['val_top5']:.2f}%  lr {record['lr']:.4g}  "
                f"{record['images_per_s']:.0f} img/s  ({train_time:.1f}s)")
            if skipped:
                root = ds.train.root if isinstance(ds.train, images.ImageFiles) else Path(".")
                say(f"warning: epoch {epoch}: --skip-bad-images skipped {len(skipped)} image"
                    f"{'s' if len(skipped) > 1 else ''} that cannot be decoded: {images.list_names(root, skipped)}")
            with metrics_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            if tb is not None:
                for key in ("train_loss", "val_loss", "val_top1", "val_top5", "lr", "images_per_s"):
                    tb.add_scalar(key, record[key], epoch)
                tb.flush()
        start_step, carried = 0, {"loss_sum": 0.0, "seen": 0}
        if not math.isfinite(record["train_loss"]):
            raise NonFiniteLoss(f"non-finite training loss in epoch {epoch}; last good checkpoint {last_ckpt}")
        last_ckpt = save_checkpoint(epoch, 0, carried) or last_ckpt
        if stop.requested:
            raise Interrupted(f"interrupted after epoch {epoch}; continue with --resume")

    model_path = None
    if env.is_main:
        model_path = out / rundir.MODEL_FILENAME
        checkpoint.save_safetensors(raw_model.state_dict(), model_path)
        if epoch < config.epochs:
            say(f"stopped after epoch {epoch} of {config.epochs} (--stop-after); continue with --resume")
        say(f"final weights: {model_path}")
        if tb is not None:
            tb.close()
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
        logits = logits.float()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hit = top.eq(y[:, None])
        sums += torch.stack([
            F.cross_entropy(logits, y, reduction="sum").double(),
            hit[:, 0].sum().double(),
            hit.any(dim=1).sum().double(),
            torch.tensor(float(y.shape[0]), dtype=torch.float64, device=device),
        ])
    sums = torch.cat([sums, torch.tensor([float(bad_count)], dtype=torch.float64, device=device)])
    distributed.all_reduce(sums)
    loss, top1, top5, count, undecodable = sums.tolist()
    count = max(count, 1.0)
    return {"loss": loss / count, "top1": top1 / count, "top5": top5 / count, "undecodable": undecodable}


def _refuse_undecodable(ds: data.DataSource, mine: set[str], where: str) -> None:
    """Stop every worker with one message naming the files that failed to decode (a collective)."""
    paths = sorted({p for part in distributed.gather_objects(sorted(mine)) for p in part})
    root = ds.train.root if isinstance(ds.train, images.ImageFiles) else Path(".")
    raise UsageError(images.undecodable_error(root, paths, where))


def _printer(enabled: bool):
    def say(msg: str) -> None:
        if enabled:
            Progress.write(msg)
    return say


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _tensorboard(config: TrainConfig, out: Path, say):
    if not config.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        say("warning: --tensorboard needs the tensorboard package; logging to metrics.jsonl only")
        return None
    return SummaryWriter(str(out / rundir.TB_DIRNAME))

