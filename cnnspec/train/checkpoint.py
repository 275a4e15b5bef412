"""Checkpoints: written atomically, the last K kept, loaded with ``weights_only=True``.

A checkpoint holds everything a resumed run needs to continue as if it had
never stopped: model, optimizer, scheduler and gradient-scaler state, the RNG
states of every worker, and the position in the data (epoch and step).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnspec.train.errors import TrainError

CHECKPOINT_DIR = "checkpoints"
FORMAT = 1
_NAME = re.compile(r"^step(\d+)-epoch(\d+)\.pt$")


def checkpoint_dir(out: Path) -> Path:
    """Where the checkpoints of the run in ``out`` live."""
    return out / CHECKPOINT_DIR


def list_checkpoints(out: Path) -> list[Path]:
    """Checkpoints in ``out``, oldest first (by optimizer step)."""
    folder = checkpoint_dir(out)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out: Path) -> Path | None:
    """The most recent checkpoint in ``out``, or None."""
    found = list_checkpoints(out)
    return found[-1] if found else None


def checksum_path(path: Path) -> Path:
    """The file beside a checkpoint that holds its SHA-256."""
    return path.with_name(path.name + ".sha256")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def intact(path: Path) -> bool:
    """Whether a checkpoint's bytes are the ones written: its SHA-256 equals the one saved beside it.

    A checkpoint written before checksums existed has none and is taken as it is.
    """
    saved = checksum_path(path)
    if not saved.is_file():
        return True
    try:
        return saved.read_text().strip() == _sha256(path)
    except OSError:
        return False


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``; its SHA-256 beside it.

    A crash mid-write leaves at worst a stray temporary file, never a torn
    checkpoint under the real name; bytes changed later (a bad disk, a stray
    write) fail the checksum when the run resumes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp_sum = path.with_name(f".{path.name}.sha256.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        tmp_sum.write_text(_sha256(tmp) + "\n")
        os.replace(tmp_sum, checksum_path(path))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_sum.unlink(missing_ok=True)


def save(out: Path, state: dict[str, Any], *, global_step: int, epoch: int, keep: int) -> Path:
    """Write ``state`` as the checkpoint for ``global_step`` and prune to the last ``keep``."""
    path = checkpoint_dir(out) / f"step{global_step:08d}-epoch{epoch:04d}.pt"
    atomic_save({"format": FORMAT, **state}, path)
    for old in list_checkpoints(out)[:-keep]:
        old.unlink(missing_ok=True)
        checksum_path(old).unlink(missing_ok=True)
    return path


def stage_path(path: Path, stage: int) -> Path:
    """The file beside the run checkpoint ``path`` that holds one pipeline stage's weights and optimizer state."""
    return path.with_name(f"{path.stem}.stage{stage}.pt")


def complete(path: Path) -> bool:
    """Whether the run checkpoint ``path`` is intact, and so is every stage file it names (pipeline, --shard).

    A pipeline's run file holds no weights: with a stage file damaged or
    missing, that stage's rank could not resume while the others wait for it.
    """
    if not intact(path):
        return False
    try:
        # mmap: a data-parallel checkpoint's weights are not read just to learn it has no stages.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return False
    stages = state.get("pipeline", {}).get("stages", 0) if isinstance(state, dict) else 0
    return all(stage_path(path, s).is_file() and intact(stage_path(path, s)) for s in range(stages))


def latest_intact(out: Path) -> tuple[Path | None, list[Path]]:
    """The most recent :func:`complete` checkpoint, and the newer ones passed over as damaged."""
    damaged: list[Path] = []
    for path in reversed(list_checkpoints(out)):
        if complete(path):
            return path, damaged
        damaged.append(path)
    return None, damaged


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary pickles), its checksum verified."""
    if not intact(path):
        raise TrainError(f"checkpoint {path} is damaged: its bytes do not match the SHA-256 saved beside it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainError(f"cannot read checkpoint {path}: {exc}".splitlines()[0]) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainError(f"{path} is not a cnnspec training checkpoint (format {FORMAT})")
    return state


def run_state(
    own: dict[str, Any],
    *,
    scaler: torch.amp.GradScaler,
    rngs: list[dict[str, Any]],
    epoch: int,
    step_in_epoch: int,
    global_step: int,
    global_batch: int,
    world_size: int,
    partial: dict[str, Any],
    history: list[dict[str, Any]],
    config: Any,
) -> dict[str, Any]:
    """A run checkpoint's state: ``own`` (what the loop keeps in it: weights, optimizer, scheduler) and where it is.

    ``rngs`` holds every worker's :func:`rng_state`, ``partial`` the epoch's
    training-loss sums so far, ``history`` the finished epochs' records;
    ``config`` is the run's TrainConfig.
    """
    return {
        **own,
        "scaler": scaler.state_dict(),
        "rng": rngs,
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "global_step": global_step,
        "global_batch": global_batch,
        "world_size": world_size,
        "partial": partial,
        "history": history,
        "config": config.model_dump(mode="json"),
    }


def resumed_step(
    state: dict[str, Any], *, global_batch: int, steps_per_epoch: int, say: Callable[[str], None]
) -> int:
    """The step in its epoch a run resumed from ``state`` starts at, in steps of this run's global batch.

    A resumed run with another world size (or data-parallel degree) takes a
    different global batch: the checkpoint's step is rescaled to about the
    same images into the epoch, and ``say`` warns that the batch changed.
    """
    start = int(state["step_in_epoch"])
    if state["global_batch"] != global_batch:
        say(f"warning: the global batch changed from {state['global_batch']} to {global_batch}")
        start = min(steps_per_epoch, start * state["global_batch"] // global_batch)
    return start


def rng_state() -> dict[str, Any]:
    """This process's RNG states, in types ``weights_only`` loading accepts."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_kind, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
        "python": [py_version, list(py_state), py_gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, py_state, py_gauss = state["python"]
    random.setstate((version, tuple(py_state), py_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def restore_rng(states: list[dict[str, Any]], *, rank: int, world: int) -> None:
    """Restore this worker's RNG states from a checkpoint's (one per worker of the run that wrote it).

    With the same number of workers each takes its own; otherwise only rank 0
    takes rank 0's and the others keep their fresh seeds.
    """
    if len(states) == world:
        set_rng_state(states[rank])
    elif rank == 0:
        set_rng_state(states[0])


def save_safetensors(state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """Write final weights as safetensors (atomically), keys as in the module's state_dict."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
