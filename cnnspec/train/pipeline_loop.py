"""The pipeline training loop: stages on a 2-D device mesh (pipeline x data), on torch.distributed.pipelining.

Every worker compiles the whole network with the run's seed (so the initial
weights are a one-process run's), keeps only its own stages (cnnspec.train.pipeline)
and runs them under a GPipe, 1F1B or interleaved 1F1B schedule. The workers of
one pipeline all read the same batches (the first stage uses the images,
the last the labels); the data-parallel replicas each read their share as
data-parallel workers do, and fully_shard on the mesh's data dimension
averages their gradients (DDP around a stage does not synchronise in torch 2.14).

Each micro-batch's loss is divided by the number of micro-batches in an
optimizer step and the schedule does not rescale, so a step computes the
same gradients, in the same order, as one process with --accum-steps over
micro-batches of the same size. Batch norm sees micro-batch statistics,
exactly as with --accum-steps.

--shard runs here too, as a pipeline of one stage: the whole network on
every worker, fully_shard over all of them, a plain forward and backward per
micro-batch instead of a schedule.
"""

from __future__ import annotations

import contextlib
import copy
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from cnnspec.train import checkpoint, data, distributed, faults, images, pipeline, rundir, runlog, stopping
from cnnspec.train.config import TrainConfig
from cnnspec.train.errors import Interrupted, UsageError
from cnnspec.train.model import ModelSource
from cnnspec.train.optim import build_optimizer
from cnnspec.train.progress import Progress
from cnnspec.train.schedule import build_schedule


def _prune_stage_files(out: Path) -> None:
    """Remove stage files whose run checkpoint was pruned (or never completed)."""
    kept = {p.stem for p in checkpoint.list_checkpoints(out)}
    folder = checkpoint.checkpoint_dir(out)
    for p in folder.glob("step*-epoch*.stage*.pt"):
        if p.name.split(".stage")[0] not in kept:
            p.unlink(missing_ok=True)
            checkpoint.checksum_path(p).unlink(missing_ok=True)


def _full_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """module's state_dict with sharded parameters gathered (a collective over the data-parallel group)."""
    from torch.distributed.tensor import DTensor

    state = {}
    for k, v in module.state_dict().items():
        if isinstance(v, DTensor):
            v = v.full_tensor()
        state[k] = v.detach().to("cpu").clone()
    return state


def _unscale_agreed(
    scaler: torch.amp.GradScaler, optimizers: list[torch.optim.Optimizer], device: torch.device
) -> None:
    """Unscale every stage's gradients and make every rank agree on whether any overflowed.

    A GradScaler sees only its own rank's stages: one that skipped a step
    another took would leave the stages out of step. So the overflow flags of
    all optimizers on all ranks are combined (max) and written back where
    scaler.step reads them. A stage without parameters (a lone ReLU) records
    no flag, and scaler.step and scaler.update refuse an optimizer without
    one: it is given the agreed flag too, so its (empty) step and the
    scale's update go as on every other rank.
    """
    for opt in optimizers:
        scaler.unscale_(opt)
    per_opt = [scaler._per_optimizer_states[id(opt)]["found_inf_per_device"] for opt in optimizers]
    for found in per_opt:
        if not found:
            found[device] = torch.zeros(1, dtype=torch.float32, device=device)
    flags = [t for found in per_opt for t in found.values()]
    any_inf = torch.stack([t.reshape(()).float() for t in flags]).amax()
    distributed.all_reduce(any_inf, op="max")
    for t in flags:
        t.fill_(any_inf.item())


def _clip_grad_norm(modules: list[nn.Module], max_norm: float, device: torch.device) -> None:
    """Clip the gradient norm of the whole model: every rank's shard of every stage counts once.

    The sum is made on the training device even where this rank has no
    gradients (stages without parameters): NCCL reduces device tensors only.
    """
    from torch.distributed.tensor import DTensor

    grads = []
    for m in modules:
        for p in m.parameters():
            if p.grad is not None:
                grads.append(p.grad._local_tensor if isinstance(p.grad, DTensor) else p.grad)
    sq = torch.zeros((), dtype=torch.float64, device=device)
    for g in grads:
        sq += g.detach().double().pow(2).sum()
    distributed.all_reduce(sq)
    total = float(sq.sqrt())
    coef = min(1.0, max_norm / (total + 1e-6))
    if coef < 1.0:
        for g in grads:
            g.mul_(coef)


def run(config: TrainConfig, source: ModelSource, out: Path, plan: rundir.Plan, env, stop) -> Any:
    """Train source as a pipeline as config says; every worker calls this (from cnnspec.train.loop.run)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe, ScheduleInterleaved1F1B

    from cnnspec.train.loop import TrainResult, training_loss

    device, rank, world = env.device, env.rank, env.world_size
    say = runlog.printer(env.is_main)
    fault = faults.from_env()
    lay = pipeline.layout(config, world)
    cuts: tuple[int, ...] = ()
    if not config.shard:  # --shard: one stage, the whole network, on every worker
        if source.checked is None:
            raise UsageError("--pipeline needs a .cnn spec: a module factory has no graph to cut")
        checked = source.checked()
        graph = checked.graph
        cuts = pipeline.plan_cuts(checked, config)

    mesh = init_device_mesh(device.type, (lay.pp, lay.dp), mesh_dim_names=("pp", "dp"))
    pp_rank, dp_rank = mesh["pp"].get_local_rank(), mesh["dp"].get_local_rank()
    grid = mesh.mesh.tolist()  # global rank of (pipeline rank, data rank)
    pp_group = mesh["pp"].get_group()
    mine = [s for s in range(lay.stages) if pipeline.owner(s, lay.pp) == pp_rank]
    first_here, last_here = 0 in mine, lay.stages - 1 in mine

    # ----- data: the replicas of the data dimension share it out; a pipeline's ranks read the same --
    ds, sampler, val_sampler = data.for_training(config, source, rank=rank, world=world, replicas=lay.dp,
                                                 replica=dp_rank)
    global_batch, steps_per_epoch = sampler.global_batch, sampler.steps_per_epoch
    if isinstance(ds.train, data.TensorImages) and isinstance(ds.val, data.TensorImages):
        train_set, val_set = data.on_device([ds.train, ds.val], device)
        train_loader: Any = data.TensorBatches(train_set, sampler, config.batch_size)
        val_loader: Any = data.TensorBatches(val_set, val_sampler, config.batch_size)
    else:
        train_loader = DataLoader(ds.train, batch_size=config.batch_size, sampler=sampler, num_workers=0)
        val_loader = DataLoader(ds.val, batch_size=config.batch_size, sampler=val_sampler, num_workers=0)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format

    # ----- model: the whole network once (the seeded initial weights), then this rank's stages --------
    torch.manual_seed(config.seed)
    whole = source.build()
    n_params = sum(p.numel() for p in whole.parameters())
    aux_weights = [float(w) for w in getattr(whole, "aux_weights", [])]
    if config.shard:
        in_shapes = {0: tuple(source.input_shape)}
        own = [whole]
    else:
        stages = pipeline.split(whole, graph, cuts, float_boundaries=amp_dtype is not None)
        in_shapes = {s: stages[s].in_shape for s in range(lay.stages)}
        own = [stages[s].module for s in mine]
    del whole
    micro = config.batch_size // lay.microbatches
    modules: list[nn.Module] = []
    eval_copies: list[nn.Module] = []
    pipe_stages = []
    sched: Any
    for s, module in zip(mine, own, strict=True):
        module = module.to(device)
        if config.channels_last:
            module = module.to(memory_format=torch.channels_last)
        if lay.dp > 1:
            eval_copies.append(copy.deepcopy(module))  # evaluated unsharded: no collectives per batch
            fully_shard(module, mesh=mesh["dp"])
        else:
            eval_copies.append(module)
        modules.append(module)
        if config.shard:
            continue
        dtype = torch.float32
        stage = PipelineStage(
            module,
            s,
            lay.stages,
            device,
            input_args=pipeline.example_input(stages[s], micro, dtype, device),
            output_args=pipeline.example_output(stages[s], micro, dtype, device, last=s == lay.stages - 1),
            group=pp_group,
        )
        pipeline.check_stage_inputs(stage)
        pipe_stages.append(stage)
    del own

    # ----- optimisation: one optimizer and lr schedule per stage (a stage's checkpoint holds its own) ---
    schedule = build_schedule(config, global_batch=global_batch, steps_per_epoch=steps_per_epoch)
    optimizers = [build_optimizer(m, config, schedule.peak_lr) for m in modules]
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, schedule.factor) for o in optimizers]
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
    scaler.scale(torch.zeros((), device=device))  # makes its scale on every rank, not only the loss's
    parts = lay.microbatches * config.accum_steps  # micro-batches per optimizer step
    step_losses: list[torch.Tensor] = []  # the undivided loss of each micro-batch of this schedule step
    nan_now = [False]

    def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = training_loss(output, target, criterion, aux_weights)
        if nan_now[0]:
            loss = loss * float("nan")
        step_losses.append(loss.detach())
        return scaler.scale(loss / parts)

    kinds = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
    try:
        if config.shard:
            sched = None
        elif config.pipeline_schedule == "interleaved":
            sched = ScheduleInterleaved1F1B(pipe_stages, lay.microbatches, loss_fn=loss_fn, scale_grads=False)
        else:
            sched = kinds[config.pipeline_schedule](pipe_stages[0], lay.microbatches, loss_fn=loss_fn,
                                                    scale_grads=False)
    except ValueError as exc:  # layout() checks torch's rules; a torch that changed them lands here
        raise UsageError(
            f"--schedule {config.pipeline_schedule} cannot run {lay.microbatches} micro-batches over {lay.stages} "
            f"stages on {lay.pp} ranks ({str(exc).strip()}); change --microbatches"
        ) from None

    def autocast() -> contextlib.AbstractContextManager:
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    def sync_buffers(targets: list[nn.Module]) -> None:
        # As DDP does before each forward: every replica takes the first replica's batch-norm statistics.
        if lay.dp > 1:
            for m in targets:
                for b in m.buffers():
                    dist.broadcast(b, src=grid[pp_rank][0], group=mesh["dp"].get_group())

    # ----- where to start ------------------------------------------------------------------------
    epoch, start_step, global_step = 0, 0, 0
    carried = {"loss_sum": 0.0, "seen": 0}
    history: list[dict[str, Any]] = []
    full_opts = StateDictOptions(full_state_dict=True)
    if plan.resume_from is not None:
        state = checkpoint.load(plan.resume_from)
        saved = state.get("pipeline")
        if saved is None or saved.get("cuts") != list(cuts):
            raise UsageError(
                f"--resume: {plan.resume_from.name} was not written by a pipeline cut as this one "
                f"({saved.get('cuts') if saved else 'no pipeline'} against {list(cuts)}); resume with the run's "
                "own --pipeline and --balance, or start over with --force"
            )
        for s, m, opt, sch in zip(mine, modules, optimizers, schedulers, strict=True):
            part = checkpoint.load(checkpoint.stage_path(plan.resume_from, s))
            try:
                if lay.dp > 1:
                    set_model_state_dict(m, part["model"], options=full_opts)
                else:
                    m.load_state_dict(part["model"])
                set_optimizer_state_dict(m, opt, part["optimizer"], options=full_opts)
            except (RuntimeError, KeyError, ValueError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise UsageError(
                    f"--resume: stage {s} of {plan.resume_from.name} does not fit this network "
                    f"({first[:200]}); start over with --force"
                ) from None
            sch.load_state_dict(part["scheduler"])
        epoch, start_step, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        # Another data-parallel degree is another global batch: the same images into the epoch, as DDP runs do.
        start_step = checkpoint.resumed_step(state, global_batch=global_batch, steps_per_epoch=steps_per_epoch,
                                             say=say)
        scaler.load_state_dict(state["scaler"])
        # The partial sums are the whole world's: one rank carries them on, so the epoch's sums add up.
        carried = state["partial"] if env.is_main else {"loss_sum": 0.0, "seen": 0}
        history = list(state["history"])
        checkpoint.restore_rng(state["rng"], rank=rank, world=world)
    else:
        torch.manual_seed(config.seed + rank)

    stop_epoch = min(config.epochs, config.stop_after or config.epochs)
    metrics_path = out / rundir.METRICS_FILENAME
    distributed.barrier()
    tb = None
    run_lock = None
    if env.is_main:
        run_lock = rundir.start(out, plan, config, source.spec_text, history)
        tb = runlog.tensorboard(config, out, say)
        setup = [
            f"  device {device} x {world} workers ({env.backend}), precision {config.precision}"
            f"{', channels_last' if config.channels_last else ''}"
        ]
        if config.shard:
            setup += [
                f"  {lay.describe()}",
                f"  effective batch {global_batch} = {config.batch_size} per device x {world} workers "
                f"x {config.accum_steps} accumulation steps",
            ]
        else:
            setup += [
                f"  {lay.describe()}, schedule {config.pipeline_schedule}, cut after nodes {list(cuts)} "
                f"(--balance {config.balance})",
                f"  effective batch {global_batch} = {config.batch_size} per pipeline ({lay.microbatches} "
                f"micro-batches of {micro}) x {lay.dp} data-parallel x {config.accum_steps} accumulation steps",
            ]
        runlog.describe_run(
            say, config=config, source=source, n_params=n_params, ds=ds, setup=setup, schedule=schedule,
            global_batch=global_batch, plan=plan, epoch=epoch, start_step=start_step,
        )

    def save_checkpoint(ep: int, step_in_epoch: int, partial: dict[str, Any]) -> Path | None:
        # Collective: the stages first (each by its first data-parallel replica), the run's file last,
        # so a run checkpoint exists only once every stage's file is in place.
        rngs = distributed.gather_objects(checkpoint.rng_state())
        path = checkpoint.checkpoint_dir(out) / f"step{global_step:08d}-epoch{ep:04d}.pt"
        for s, m, opt, sch in zip(mine, modules, optimizers, schedulers, strict=True):
            model_state = _full_state(m)
            optim_state = get_optimizer_state_dict(m, opt, options=full_opts)
            if dp_rank == 0:
                checkpoint.atomic_save(
                    {
                        "format": checkpoint.FORMAT,
                        "stage": s,
                        "model": model_state,
                        "optimizer": optim_state,
                        "scheduler": sch.state_dict(),
                    },
                    checkpoint.stage_path(path, s),
                )
        distributed.barrier()
        written = None
        if env.is_main:
            # The stages' weights and optimizer states are in their own files (checkpoint.stage_path).
            own = {
                "pipeline": {"stages": lay.stages, "cuts": list(cuts), "schedule": config.pipeline_schedule},
                "scheduler": schedulers[0].state_dict(),
            }
            state = checkpoint.run_state(
                own, scaler=scaler, rngs=rngs, epoch=ep, step_in_epoch=step_in_epoch, global_step=global_step,
                global_batch=global_batch, world_size=world, partial=partial, history=history, config=config,
            )
            written = checkpoint.save(out, state, global_step=global_step, epoch=ep, keep=config.keep_checkpoints)
            _prune_stage_files(out)
        distributed.barrier()
        return written

    last_ckpt = plan.resume_from
    progress = Progress(enabled=env.is_main and config.progress != "off", force=config.progress == "on")

    while epoch < stop_epoch:
        sampler.set_epoch(epoch)
        sampler.set_start_step(start_step)
        for m in modules:
            m.train()
        loss_sum = torch.tensor(carried["loss_sum"], device=device, dtype=torch.float64)
        seen = carried["seen"]
        bad = torch.zeros((), dtype=torch.bool, device=device)
        batches = iter(train_loader)
        undecodable: set[str] = set()  # this rank's training files that failed to decode this epoch
        bar = progress.epoch(epoch, config.epochs, steps_per_epoch, start_step)
        t0, images_done = time.perf_counter(), 0
        window = runlog.LossWindow(global_batch=global_batch)

        for step_in_epoch in range(start_step, steps_per_epoch):
            if fault is not None:
                fault.before_step(global_step, rank)
                nan_now[0] = fault.kind == "nan" and fault.step == global_step
            for accum_i in range(config.accum_steps):
                batch = next(batches)
                undecodable.update(images.failed_in_batch(batch, ds.train))  # the loader put another image there
                x, y = batch[0], batch[1]
                x = x.to(device, non_blocking=True, memory_format=memory_format)
                y = y.to(device, non_blocking=True)
                sync_buffers(modules)
                step_losses.clear()
                args = (x,) if first_here else ()
                kw: dict[str, Any] = {"target": y} if last_here else {}
                if sched is None:  # --shard: a plain step; FSDP reduce-scatters after the last micro-batch
                    if lay.dp > 1:
                        modules[0].set_requires_gradient_sync(accum_i == config.accum_steps - 1)
                    with autocast():
                        scaled = loss_fn(modules[0](x), y)
                    scaled.backward()
                else:
                    with autocast():
                        sched.step(*args, return_outputs=False, **kw)
                if last_here:
                    for loss_d in step_losses:
                        loss_sum += loss_d.double() * micro
                        bad |= ~torch.isfinite(loss_d)
                        window.add(loss_d)
                    seen += y.shape[0]
            nan_now[0] = False
            if scaler.is_enabled():
                _unscale_agreed(scaler, optimizers, device)
            if config.clip_grad_norm is not None:
                _clip_grad_norm(modules, config.clip_grad_norm, device)
            for opt, sch in zip(optimizers, schedulers, strict=True):
                scaler.step(opt)
                opt.zero_grad(set_to_none=True)
                sch.step()
            scaler.update()
            global_step += 1
            images_done += global_batch
            bar.update()
            window.step()

            last = step_in_epoch == steps_per_epoch - 1
            ckpt_due = config.checkpoint_every > 0 and global_step % config.checkpoint_every == 0 and not last
            if not (global_step % config.log_every == 0 or ckpt_due or last):
                continue
            interrupt = stopping.agree_to_stop(
                bad=bad, stop=stop, undecodable=undecodable, skip_bad_images=config.skip_bad_images, ds=ds, bar=bar,
                epoch=epoch, global_step=global_step, last_ckpt=last_ckpt,
                hint="Try a lower --base-lr or --clip-grad-norm.",
            )
            if interrupt or ckpt_due:
                # The last stage's ranks hold the loss sums: the checkpoint takes the whole world's.
                sums = torch.tensor([loss_sum.item(), float(seen)], dtype=torch.float64, device=device)
                distributed.all_reduce(sums)
                partial = {"loss_sum": sums[0].item(), "seen": int(sums[1].item())}
                last_ckpt = save_checkpoint(epoch, step_in_epoch + 1, partial) or last_ckpt
                if interrupt:
                    stopping.interrupted(bar, say, stop, last_ckpt, f"epoch {epoch + 1}, step {step_in_epoch + 1}")
            # Only the last stage's ranks compute losses: rank 0 shows the sum over all (at this sync point).
            window.show(bar, schedulers[0].get_last_lr()[0], distributed.all_reduce(window.pending(device)))
        bar.close()
        train_time = time.perf_counter() - t0

        # ----- end of epoch ---------------------------------------------------------------------
        # The last stage's ranks count the loss and the images (rank 0 also what a resumed run carried).
        totals = torch.tensor([loss_sum.item(), float(seen)], dtype=torch.float64, device=device)
        distributed.all_reduce(totals)
        val = _evaluate(
            modules,
            eval_copies,
            mine,
            lay,
            grid,
            pp_rank,
            dp_rank,
            in_shapes,
            val_loader,
            device,
            memory_format,
            autocast,
        )
        if val["undecodable"] > 0 and not config.skip_bad_images:
            raise UsageError(
                f"--data {config.data}: epoch {epoch + 1}, validation: {int(val['undecodable'])} images cannot be "
                "decoded; remove or replace them, or pass --skip-bad-images to leave them out"
            )
        epoch += 1
        record = runlog.epoch_record(epoch=epoch, step=global_step, totals=totals, val=val,
                                     lr=schedulers[0].get_last_lr()[0], images=images_done, train_time=train_time)
        history.append(record)
        if env.is_main:
            runlog.report_epoch(record, epochs=config.epochs, say=say, metrics_path=metrics_path, tb=tb)
        start_step, carried = 0, {"loss_sum": 0.0, "seen": 0}
        stopping.check_epoch_loss(record, last_ckpt)
        last_ckpt = save_checkpoint(epoch, 0, carried) or last_ckpt
        if stop.requested:
            raise Interrupted(f"interrupted after epoch {epoch}; continue with --resume")

    # ----- the whole model, gathered from the stages, in the whole model's key order --------------
    sync_buffers(modules)
    parts_here = {s: _full_state(m) for s, m in zip(mine, modules, strict=True)}
    gathered: list[Any] = [None] * world if env.is_main else []
    dist.gather_object(parts_here if dp_rank == 0 else {}, gathered if env.is_main else None, dst=0)
    model_path = None
    if env.is_main:
        by_stage = {s: sd for part in gathered for s, sd in part.items()}
        whole_state = {k: v for s in sorted(by_stage) for k, v in by_stage[s].items()}
        model_path = out / rundir.MODEL_FILENAME
        checkpoint.save_safetensors(whole_state, model_path)
        runlog.report_finish(say, epoch=epoch, epochs=config.epochs, model_path=model_path, tb=tb)
    distributed.barrier()
    if run_lock is not None:
        run_lock.close()
    return TrainResult(out=out, epochs_done=epoch, history=history, model_path=model_path, checkpoint_path=last_ckpt)


@torch.no_grad()
def _evaluate(
    modules, eval_copies, mine, lay, grid, pp_rank, dp_rank, in_shapes, loader, device, memory_format, autocast
) -> dict[str, float]:
    """Loss, top-1 and top-5 over the validation set: each batch passed stage to stage, point to point.

    The ranks of one pipeline read the same batches (their replica's share),
    so each knows the size of what it receives. Sharded stages are evaluated
    from an unsharded copy, so replicas with different numbers of batches
    never wait on each other.
    """
    from cnnspec.train.loop import batch_scores, val_figures

    if lay.dp > 1:
        for m, e in zip(modules, eval_copies, strict=True):
            e.load_state_dict(_full_state(m))
    for e in eval_copies:
        e.eval()
    local = dict(zip(mine, eval_copies, strict=True))
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    bad_count = 0
    for batch in loader:
        x, y = batch[0], batch[1]
        if len(batch) > 2 and bool((batch[2] >= 0).any()):
            # A file that failed to decode: left out (the ranks of a pipeline read the same batch alike).
            keep = batch[2] < 0
            bad_count += int((~keep).sum()) if lay.stages - 1 in mine else 0  # counted once a replica
            x, y = x[keep], y[keep]
            if y.numel() == 0:
                continue
        n = y.shape[0]
        value = None
        for s in range(lay.stages):
            holder = pipeline.owner(s, lay.pp)
            if holder != pp_rank:
                continue
            if s == 0:
                value = x.to(device, memory_format=memory_format)
            elif pipeline.owner(s - 1, lay.pp) != pp_rank:
                value = torch.empty((n, *in_shapes[s]), dtype=torch.float32, device=device)
                dist.recv(value, src=grid[pipeline.owner(s - 1, lay.pp)][dp_rank])
            with autocast():
                value = local[s](value)
            value = value.float()
            if s + 1 < lay.stages and pipeline.owner(s + 1, lay.pp) != pp_rank:
                dist.send(value.contiguous(), dst=grid[pipeline.owner(s + 1, lay.pp)][dp_rank])
        if lay.stages - 1 in mine:
            sums += batch_scores(value, y.to(device))
    return val_figures(sums, bad_count)
