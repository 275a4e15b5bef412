"""Pipeline parallelism: stages over the original module paths, and real multi-process gloo runs
(GPipe, 1F1B, interleaved, pipeline x data) against one process accumulating micro-batches."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from train_helpers import REPO, initial_weights, launch_here, load_weights, made_once, run_cli, shared_runs, train_here

import cnnspec
from cnnspec.api import analyse
from cnnspec.train import checkpoint, cli, pipeline
from cnnspec.train.errors import TrainError

TINY_BN = REPO / "tests" / "train" / "specs" / "tiny_bn.cnn"
# One thread a process: the workers' (the launcher gives each of 2 cores' worth one) and the reference's
# (train_here, in this process), so that float reductions run in the same order and the runs agree to the bit.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
COMMON = ("--data", "digits", "--epochs", "2", "--progress", "off", "--seed", "3")


def _max_diff(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ stages


def test_stages_keep_the_module_paths_and_compute_the_whole_network() -> None:
    c = analyse(str(TINY_BN))
    torch.manual_seed(0)
    whole = cnnspec.compile(str(TINY_BN))
    stages = pipeline.split(whole, c.graph, [3, 11, 19])
    keys = [k for s in stages for k in s.module.state_dict()]
    assert keys == list(whole.state_dict())  # a subset each, the whole model's order, no renaming
    assert [k for k in stages[1].module.state_dict() if k.endswith("weight")][:1] == ["layer1.conv1.weight"]
    assert [s.in_shape for s in stages] == [(1, 16, 16), (8, 16, 16), (8, 8, 8), (8 * 8 * 8,)]
    whole.eval()
    x = torch.randn(3, 1, 16, 16)
    y = x
    for s in stages:
        s.module.eval()
        y = s.module(y)
        assert tuple(y.shape[1:]) == s.out_shape
    assert torch.equal(y, whole(x))


def test_a_later_stage_never_overwrites_what_it_receives() -> None:
    # After node 2 (bn1) the whole network runs its ReLU in place; the next stage's input is an autograd
    # leaf that requires grad, so there it must not.
    c = analyse(str(TINY_BN))
    stages = pipeline.split(cnnspec.compile(str(TINY_BN)), c.graph, [2])
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    stages[1].module(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_cuts_where_more_than_one_tensor_crosses_are_refused() -> None:
    c = analyse(str(TINY_BN))
    with pytest.raises(pipeline.StageError, match=r"cannot cut TinyBN after node 5 \(layer1.bn1\): 2 tensors cross"):
        pipeline.split(cnnspec.compile(str(TINY_BN)), c.graph, [5])
    with pytest.raises(pipeline.StageError, match="without layers"):
        pipeline.split(cnnspec.compile(str(TINY_BN)), c.graph, [11, 3])


def test_a_stage_input_that_does_not_require_grad_is_refused(tmp_path: Path) -> None:
    """Built from an example without requires_grad, stage 1 would send no gradient back and stage 0
    would train on zeros with no error: check_stage_inputs refuses such a stage."""
    import torch.distributed as dist
    from torch.distributed.pipelining import PipelineStage

    c = analyse(str(TINY_BN))
    stage = pipeline.split(cnnspec.compile(str(TINY_BN)), c.graph, [11])[1]
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        cpu = torch.device("cpu")
        good = pipeline.example_input(stage, 4, torch.float32, cpu)
        assert good.requires_grad
        pipeline.check_stage_inputs(PipelineStage(stage.module, 1, 2, cpu, input_args=good))
        bad = torch.empty((4, *stage.in_shape))
        with pytest.raises(TrainError, match="zero gradients"):
            pipeline.check_stage_inputs(PipelineStage(stage.module, 1, 2, cpu, input_args=bad))
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------ bad input, before any worker starts


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--pipeline", "2", "--nproc-per-node", "3"), "3 workers do not divide into pipelines of 2 ranks"),
        (
            ("--pipeline", "2", "--batch-size", "30", "--microbatches", "4", "--nproc-per-node", "2"),
            "--microbatches 4 does not divide --batch-size 30",
        ),
        (("--pipeline", "40", "--nproc-per-node", "40"), "legal cut points, so at most"),
        (
            ("--pipeline", "4", "--schedule", "interleaved", "--stages-per-rank", "1", "--nproc-per-node", "4"),
            "--schedule interleaved runs several stages on each pipeline rank",
        ),
        (("--pipeline", "2", "--schedule", "interleaved", "--nproc-per-node", "2"), "puts every stage on one rank"),
        (
            ("--pipeline", "2", "--microbatches", "1", "--nproc-per-node", "2"),
            "--schedule 1f1b over 2 pipeline ranks needs --microbatches 2 or more, got 1",
        ),
        (
            ("--pipeline", "3", "--batch-size", "2", "--nproc-per-node", "3"),
            "which --batch-size 2 cannot be; use a batch size that is a multiple of 3",
        ),
        (("--pipeline", "2", "--nproc-per-node", "1"), "--pipeline 2 needs 2 workers or more, got 1"),
        (("--pipeline", "2"), "--pipeline 2 needs 2 workers or more, got 1"),  # one process, no launcher
        (("--shard", "--pipeline", "2", "--nproc-per-node", "2"), "--shard and --pipeline do not combine"),
        (("--shard",), "--shard shards over the workers and needs 2 or more, got 1"),
        (("--shard", "--compile", "--nproc-per-node", "2"), "--compile is not supported with --shard yet"),
        (("--microbatches", "4"), "--microbatches 4: only a pipeline reads this, and without --pipeline it would"),
        (("--balance", "params", "--nproc-per-node", "2"), "--balance params: only a pipeline reads this"),
        (
            ("--schedule", "gpipe", "--stages-per-rank", "2", "--shard", "--nproc-per-node", "2"),
            "--stages-per-rank 2, --pipeline-schedule gpipe: only a pipeline reads these, and without --pipeline they",
        ),
        (("--shard", "--microbatches", "2", "--nproc-per-node", "2"), "with --shard use --accum-steps"),
    ],
)
def test_bad_pipeline_options_are_refused_before_any_worker_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, extra: tuple, message: str
) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    out = tmp_path / "run"
    code, err = _main(capsys, str(TINY_BN), "--data", "digits", "--out", str(out), *extra)
    assert code == 2 and message in err, err
    assert "Traceback" not in err and "worker(s) failed" not in err
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("options", "world", "micro"),
    [
        ({"pipeline": 2}, 2, 2),  # 1f1b, the default schedule, refuses fewer micro-batches than stages
        ({"pipeline": 3, "batch_size": 64}, 3, 4),  # raised to a divisor of the batch
        ({"pipeline": 2, "pipeline_schedule": "gpipe"}, 4, 2),
        ({"pipeline": 6, "pipeline_schedule": "interleaved", "batch_size": 48}, 3, 3),
        ({"pipeline": 6, "pipeline_schedule": "interleaved", "batch_size": 48, "microbatches": 6}, 3, 6),
        ({"shard": True}, 2, 1),
    ],
)
def test_the_micro_batches_default_to_what_the_schedule_needs(options: dict, world: int, micro: int) -> None:
    from cnnspec.train.config import resolve

    assert pipeline.layout(resolve(options), world).microbatches == micro


def test_a_network_with_aux_outputs_is_refused_before_any_worker_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "aux.cnn"
    spec.write_text(
        "network WithAux {\n    input: 1 x 8 x 8\n    conv(4, 3, padding = 1); relu\n"
        "    aux(weight = 0.3) { flatten; linear(10) }\n    conv(4, 3, padding = 1); relu; flatten; linear(10)\n}\n"
    )
    out = tmp_path / "run"
    code, err = _main(capsys, str(spec), "--data", "digits", "--out", str(out), "--pipeline", "2",
                      "--nproc-per-node", "2")  # fmt: skip
    assert code == 2, err
    assert err.count("WithAux has auxiliary outputs (aux1); a pipeline cannot train them yet") == 1, err
    assert "worker(s) failed" not in err and not out.exists()


class _Shown:
    """A progress bar that keeps what it was asked to show."""

    def __init__(self) -> None:
        self.figures: list[dict] = []

    def show(self, *, loss: float, lr: float, rate: float) -> None:
        self.figures.append({"loss": loss, "lr": lr, "rate": rate})


def test_a_rank_without_losses_shows_the_summed_loss_and_the_images_of_its_steps() -> None:
    """A pipeline's rank 0 runs the first stage: it adds no loss, yet its steps train global_batch images
    each, and the last stage's losses reach it summed over the workers."""
    from cnnspec.train import runlog

    cpu = torch.device("cpu")
    first, last = runlog.LossWindow(global_batch=64), runlog.LossWindow(global_batch=64)
    for w in (first, last):
        w.step()
        w.step()
    last.add(torch.tensor(1.0))
    last.add(torch.tensor(2.0))
    bar = _Shown()
    first.show(bar, 0.1, first.pending(cpu) + last.pending(cpu))
    assert bar.figures[0]["loss"] == pytest.approx(1.5) and bar.figures[0]["rate"] > 0
    first.show(bar, 0.1)  # a new window: no steps and no losses yet
    assert bar.figures[1]["rate"] == 0 and bar.figures[1]["loss"] != bar.figures[1]["loss"]


@pytest.mark.parametrize("harm", ["damaged", "missing"])
def test_resume_passes_over_a_checkpoint_whose_stage_file_is_not_intact(tmp_path: Path, harm: str) -> None:
    """The run file alone holds no weights: a stage file damaged or lost makes the whole checkpoint unusable,
    so resuming falls back to the one before (not one rank failing while the others wait)."""
    out = tmp_path / "run"
    folder = checkpoint.checkpoint_dir(out)
    paths = []
    for step in (10, 20):
        path = folder / f"step{step:08d}-epoch0001.pt"
        for s in range(2):
            checkpoint.atomic_save({"format": checkpoint.FORMAT, "stage": s, "model": {"w": torch.ones(3)}},
                                   checkpoint.stage_path(path, s))  # fmt: skip
        checkpoint.atomic_save({"format": checkpoint.FORMAT, "pipeline": {"stages": 2}}, path)
        paths.append(path)
    assert checkpoint.latest_intact(out) == (paths[1], [])
    stage1 = checkpoint.stage_path(paths[1], 1)
    if harm == "damaged":
        data = bytearray(stage1.read_bytes())
        data[len(data) // 2] ^= 0xFF
        stage1.write_bytes(bytes(data))
    else:
        stage1.unlink()
    assert checkpoint.latest_intact(out) == (paths[0], [paths[1]])


def test_a_resumed_step_is_rescaled_to_a_changed_global_batch() -> None:
    said: list[str] = []
    state = {"step_in_epoch": 40, "global_batch": 32}
    assert checkpoint.resumed_step(state, global_batch=32, steps_per_epoch=44, say=said.append) == 40 and not said
    assert checkpoint.resumed_step(state, global_batch=64, steps_per_epoch=22, say=said.append) == 20
    assert checkpoint.resumed_step(state, global_batch=16, steps_per_epoch=89, say=said.append) == 80
    assert said == [f"warning: the global batch changed from 32 to {b}" for b in (64, 16)]


def test_a_cut_marker_where_two_tensors_cross_is_a_spec_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "marked.cnn"
    spec.write_text(
        "network Marked(num_classes = 10) {\n    input: 1 x 8 x 8\n    conv(4, 3, padding = 1)\n"
        "    residual { conv(4, 3, padding = 1); cut; relu }\n    flatten\n    linear(num_classes)\n}\n"
    )
    code, err = _main(
        capsys,
        str(spec),
        "--data",
        "digits",
        "--out",
        str(tmp_path / "run"),
        "--pipeline",
        "2",
        "--nproc-per-node",
        "2",
    )
    assert code == 2, err
    assert f"{spec}:4:41: error[E702]" in err and "^^^" in err and "Traceback" not in err


# ------------------------------------------------------------------ real runs (gloo, CPU)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the module's runs, seen by every xdist worker, so that the reference and the straight
    run are made once a session (made_once)."""
    folder = shared_runs(tmp_path_factory) / "pipeline"
    folder.mkdir(exist_ok=True)
    return folder


def _run(out: Path, *args: str) -> Path:
    def make(out: Path) -> None:
        res = launch_here(*args, "--out", str(out), env=ONE_THREAD)
        assert res.returncode == 0, res.stderr[-3000:]

    return made_once(out, make)


def _reference(runs: Path) -> Path:
    """One process, micro-batches of 8 accumulated 4 to a step: what a pipeline with --batch-size 32
    --microbatches 4 computes. COMMON's options, in this process."""
    return made_once(
        runs / "reference",
        lambda out: train_here(TINY_BN, out, data="digits", epochs=2, seed=3, batch_size=8, accum_steps=4),
    )


def _pipeline(runs: Path, schedule: str, *extra: str) -> Path:
    return _run(
        runs / schedule,
        str(TINY_BN),
        *COMMON,
        "--batch-size",
        "32",
        "--microbatches",
        "4",
        "--schedule",
        schedule,
        "--nproc-per-node",
        "2",
        *extra,
    )


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_two_stages_equal_one_process_accumulating_the_micro_batches(runs: Path, schedule: str) -> None:
    ref = load_weights(_reference(runs) / "model.safetensors")
    out = _pipeline(runs, schedule, "--pipeline", "2")
    got = load_weights(out / "model.safetensors")
    # Weights and batch-norm running statistics alike (0 was measured: the same sums in the same order).
    assert _max_diff(ref, got) <= 1e-6
    assert any(k.endswith("running_var") for k in got)
    assert _max_diff(ref, initial_weights(TINY_BN, seed=3)) > 1e-2  # it trained: agreeing is not trivial
    assert [h["val_top1"] for h in _history(out)] == pytest.approx(
        [h["val_top1"] for h in _history(runs / "reference")]
    )
    # The whole model, loadable strictly by the compiler from the run directory.
    model = cnnspec.compile(str(TINY_BN), weights=out)
    assert _max_diff(dict(model.state_dict()), got) == 0
    # Checkpoints: the run's file and one per stage, each written atomically with its checksum.
    names = sorted(p.name for p in checkpoint.checkpoint_dir(out).glob("*.pt"))
    assert names == [
        "step00000044-epoch0001.pt",
        "step00000044-epoch0001.stage0.pt",
        "step00000044-epoch0001.stage1.pt",
        "step00000088-epoch0002.pt",
        "step00000088-epoch0002.stage0.pt",
        "step00000088-epoch0002.stage1.pt",
    ]
    stage1 = checkpoint.load(checkpoint.checkpoint_dir(out) / "step00000088-epoch0002.stage1.pt")
    assert set(stage1["model"]) < set(got) and "fc.weight" in stage1["model"]


@pytest.mark.slow
def test_default_options_run_and_the_progress_bar_shows_the_loss(tmp_path: Path) -> None:
    """--pipeline 2 alone: 1F1B (the default) needs 2 micro-batches, which is what --microbatches then is;
    rank 0, which runs the first stage, shows the last stage's loss and the images its steps trained."""
    args = ("--data", "digits", "--epochs", "1", "--progress", "on", "--log-every", "2", "--out", str(tmp_path / "run"))
    res = launch_here(str(TINY_BN), *args, "--pipeline", "2", "--nproc-per-node", "2", env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "effective batch 64 = 64 per pipeline (2 micro-batches of 32)" in res.stdout
    assert "loss nan" not in res.stderr and re.search(r"loss \d+\.\d{4}  lr \S+  [1-9]\d* img/s", res.stderr)


@pytest.mark.slow
def test_interleaved_four_stages_on_two_ranks(runs: Path) -> None:
    """Also with accumulation: 2 steps of 2 micro-batches of 8 are the reference's 4 micro-batches of 8."""
    ref = load_weights(_reference(runs) / "model.safetensors")
    res = launch_here(
        str(TINY_BN),
        *COMMON,
        "--batch-size",
        "16",
        "--microbatches",
        "2",
        "--accum-steps",
        "2",
        "--schedule",
        "interleaved",
        "--pipeline",
        "4",
        "--nproc-per-node",
        "2",
        "--out",
        str(runs / "interleaved"),
        env=ONE_THREAD,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "pipeline 4 stages on 2 ranks, 2 stages per rank x data parallel 1" in res.stdout
    assert (
        "effective batch 32 = 16 per pipeline (2 micro-batches of 8) x 1 data-parallel x 2 accumulation" in res.stdout
    )
    assert _max_diff(ref, load_weights(runs / "interleaved" / "model.safetensors")) <= 1e-6


def _stopped(runs: Path, copy: Path) -> Path:
    """The straight 1F1B run's options, stopped after epoch 1 (checkpoints every 10 steps too, so that one
    lies inside the epoch), copied to ``copy`` for a test to resume: made once for the two tests below."""
    options = ("--batch-size", "32", "--microbatches", "4", "--pipeline", "2", "--nproc-per-node", "2")
    stopped = _run(runs / "stopped", str(TINY_BN), *COMMON, *options, "--checkpoint-every", "10", "--stop-after", "1")
    return Path(shutil.copytree(stopped, copy))


@pytest.mark.slow
def test_stopping_after_an_epoch_and_resuming_is_bit_identical(runs: Path, tmp_path: Path) -> None:
    straight = _pipeline(runs, "1f1b", "--pipeline", "2")
    part = _stopped(runs, tmp_path / "part")
    assert len(_history(part)) == 1
    res = launch_here("--resume", "--out", str(part), "--nproc-per-node", "2", env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming from step00000044-epoch0001.pt" in res.stdout
    a, b = load_weights(straight / "model.safetensors"), load_weights(part / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    keys = ("epoch", "step", "train_loss", "val_loss", "val_top1", "lr")
    assert [{k: h[k] for k in keys} for h in _history(straight)] == [{k: h[k] for k in keys} for h in _history(part)]


@pytest.mark.slow
def test_a_killed_stage_worker_is_restarted_and_finishes(runs: Path) -> None:
    out = runs / "kill"
    res = launch_here(
        str(TINY_BN),
        *COMMON,
        "--batch-size",
        "32",
        "--microbatches",
        "4",
        "--pipeline",
        "2",
        "--schedule",
        "gpipe",
        "--nproc-per-node",
        "2",
        "--max-restarts",
        "1",
        "--out",
        str(out),
        env={**ONE_THREAD, "CNNSPEC_FAULT": "kill@step:50,rank:1"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "torchrun restart: resuming from step00000044-epoch0001.pt" in res.stdout
    assert [h["epoch"] for h in _history(out)] == [1, 2]
    ref = load_weights(_reference(runs) / "model.safetensors")
    assert _max_diff(ref, load_weights(out / "model.safetensors")) <= 1e-6


@pytest.mark.slow
def test_pipeline_by_data_parallel_equals_one_process_with_the_global_batch(tmp_path: Path, lenet: Path) -> None:
    """2 stages x 2 replicas (4 processes), micro-batches of 16: one process takes micro-batches of 32
    (both replicas' share), accumulated 2 to a step. No batch norm here: each replica's statistics are
    its own micro-batches', as with DDP."""
    args = ("--data", "digits", "--epochs", "1", "--progress", "off", "--seed", "5")
    train_here(lenet, tmp_path / "one", data="digits", epochs=1, seed=5, batch_size=32, accum_steps=2)
    pp = launch_here(
        str(lenet),
        *args,
        "--batch-size",
        "32",
        "--microbatches",
        "2",
        "--pipeline",
        "2",
        "--nproc-per-node",
        "4",
        "--out",
        str(tmp_path / "pp"),
        env=ONE_THREAD,
    )
    assert pp.returncode == 0, pp.stderr[-3000:]
    assert "pipeline 2 stages on 2 ranks x data parallel 2" in pp.stdout and "effective batch 64" in pp.stdout
    w1, w2 = load_weights(tmp_path / "one" / "model.safetensors"), load_weights(tmp_path / "pp" / "model.safetensors")
    assert _max_diff(w1, w2) <= 1e-6
    assert _max_diff(w1, initial_weights(lenet, seed=5)) > 1e-2


@pytest.mark.slow
def test_resuming_mid_epoch_with_more_replicas_starts_at_the_same_images(runs: Path, tmp_path: Path) -> None:
    """2 stages on 2 workers (global batch 32), checkpointed at step 40 of 44; resumed on 4 workers
    (2 replicas, global batch 64) it goes on from step 20 of 22, as a data-parallel run does."""
    out = _stopped(runs, tmp_path / "run")
    for p in checkpoint.checkpoint_dir(out).glob("step00000044-*"):  # as if stopped before the epoch's end
        p.unlink()
    # --stop-after 1 again: the end of epoch 1 shows where the resumed run started; epoch 2 would add nothing.
    res = launch_here("--resume", "--out", str(out), "--nproc-per-node", "4", "--stop-after", "1", env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "warning: the global batch changed from 32 to 64" in res.stdout
    assert re.search(r"from step00000040-epoch\d+\.pt \(epoch 1, step 20\)", res.stdout), res.stdout
    assert [h["step"] for h in _history(out)] == [42]


@pytest.mark.slow
def test_fp16_loss_scaling_agrees_across_stages(tmp_path: Path) -> None:
    """Every rank unscales its own stages' gradients; the overflow flags are combined, so the stages
    step (or skip) together and the run equals one process's fp16 run with the same micro-batches."""
    args = (
        str(TINY_BN),
        "--data",
        "digits",
        "--epochs",
        "1",
        "--progress",
        "off",
        "--seed",
        "3",
        "--precision",
        "fp16",
    )
    train_here(TINY_BN, tmp_path / "one", data="digits", epochs=1, seed=3, precision="fp16", batch_size=8,
               accum_steps=4)  # fmt: skip
    pp = launch_here(*args, "--batch-size", "32", "--microbatches", "4", "--pipeline", "2", "--nproc-per-node", "2",
                 "--out", str(tmp_path / "pp"), env=ONE_THREAD)  # fmt: skip
    assert pp.returncode == 0, pp.stderr[-3000:]
    w1, w2 = load_weights(tmp_path / "one" / "model.safetensors"), load_weights(tmp_path / "pp" / "model.safetensors")
    assert _max_diff(w1, w2) <= 1e-6


#: A first stage of one ReLU: its rank's optimizer has no parameters, and records no overflow check.
NO_PARAMS = """network NoParams(num_classes = 10) {
    input: 1 x 8 x 8
    relu
    cut
    conv(4, 3, padding = 1)
    flatten
    linear(num_classes)
}
"""


@pytest.mark.slow
def test_fp16_with_a_stage_without_parameters(tmp_path: Path) -> None:
    """GradScaler.step and .update refuse an optimizer with no recorded overflow check; the stage
    without parameters gets the agreed one, so the run trains and equals one process's fp16 run."""
    spec = tmp_path / "noparams.cnn"
    spec.write_text(NO_PARAMS)
    args = (str(spec), "--data", "digits", "--epochs", "1", "--progress", "off", "--seed", "3", "--precision", "fp16")
    train_here(spec, tmp_path / "one", data="digits", epochs=1, seed=3, precision="fp16", batch_size=16, accum_steps=2)
    pp = launch_here(*args, "--batch-size", "32", "--microbatches", "2", "--pipeline", "2", "--nproc-per-node", "2",
                 "--out", str(tmp_path / "pp"), env=ONE_THREAD)  # fmt: skip
    assert pp.returncode == 0, pp.stderr[-3000:]
    assert "cut after nodes [1]" in pp.stdout  # stage 0 is the ReLU alone
    w1, w2 = load_weights(tmp_path / "one" / "model.safetensors"), load_weights(tmp_path / "pp" / "model.safetensors")
    assert _max_diff(w1, w2) <= 1e-6
    assert _max_diff(w1, initial_weights(spec, seed=3)) > 1e-2


@pytest.mark.slow
def test_an_image_that_fails_when_decoded_stops_every_stage_without_a_hang(tmp_path: Path) -> None:
    from test_train_images import TINY, _damaged_png, _folder

    root = _folder(tmp_path / "imgs")
    _damaged_png(root / "train" / "blue" / "bad.png")
    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    args = ("--data", f"imagefolder:{root}", "--batch-size", "2", "--microbatches", "2", "--progress", "off")
    done = run_cli(str(spec), *args, "--pipeline", "2", "--nproc-per-node", "2", "--out", str(tmp_path / "run"),
                   timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert "train/blue/bad.png cannot be decoded (broken data stream" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("cannot be decoded") == 1


@pytest.mark.slow
def test_shard_equals_one_process_with_the_global_batch(tmp_path: Path, lenet: Path) -> None:
    """--shard (FSDP2 alone) on 2 workers, accumulating 2 micro-batches of 16 each: one process's batch of 64."""
    args = (str(lenet), "--data", "digits", "--epochs", "1", "--progress", "off", "--seed", "5")
    train_here(lenet, tmp_path / "one", data="digits", epochs=1, seed=5, batch_size=64)
    sharded = launch_here(*args, "--batch-size", "16", "--accum-steps", "2", "--shard", "--nproc-per-node", "2",
                      "--out", str(tmp_path / "shard"), env=ONE_THREAD)  # fmt: skip
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    assert "sharded data parallel over 2 workers (fully_shard)" in sharded.stdout
    w1 = load_weights(tmp_path / "one" / "model.safetensors")
    w2 = load_weights(tmp_path / "shard" / "model.safetensors")
    assert _max_diff(w1, w2) <= 1e-6
    assert _max_diff(w1, initial_weights(lenet, seed=5)) > 1e-2
    assert _max_diff(w2, dict(cnnspec.compile(str(lenet), weights=tmp_path / "shard").state_dict())) == 0
