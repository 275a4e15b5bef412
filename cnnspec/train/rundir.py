"""The run directory: refuse to overwrite a run unless told to resume or start over."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cnnspec.train import checkpoint
from cnnspec.train.config import CONFIG_FILENAME, TrainConfig, save_config
from cnnspec.train.errors import UsageError

METRICS_FILENAME = "metrics.jsonl"
MODEL_FILENAME = "model.safetensors"
SPEC_FILENAME = "spec.cnn"
TB_DIRNAME = "tb"

# Only what a run writes is removed by --force; anything else a person put there stays.
_RUN_FILES = (CONFIG_FILENAME, METRICS_FILENAME, MODEL_FILENAME, SPEC_FILENAME)
_RUN_DIRS = (checkpoint.CHECKPOINT_DIR, TB_DIRNAME)


@dataclass(frozen=True)
class Plan:
    """How to start: from scratch, or from ``resume_from``."""

    resume_from: Path | None
    clear: bool  # --force: remove the previous run's files first
    auto_resumed: bool = False  # a torchrun restart picked up the last checkpoint
    #: Newer checkpoints passed over because their checksum failed (the run says so as it resumes).
    damaged: tuple[Path, ...] = ()


def restart_count() -> int:
    """How often torchrun has restarted this job (0 when not restarted or not under torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def ensure_writable(out: Path) -> None:
    """Check, before any work starts, that ``out`` can be made and written: a UsageError with the
    system's reason otherwise (/proc/x, /dev/null/x, a read-only mount). Nothing is left behind."""
    place = out
    while not place.exists() and place != place.parent:
        place = place.parent  # the folder the run would create its directories in
    try:
        if not place.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        os.rmdir(tempfile.mkdtemp(dir=place, prefix=".cnnspec-write-test."))
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UsageError(f"--out {out}: cannot write there ({reason}); choose another directory") from None


LOCK_FILENAME = ".lock"


def lock(out: Path) -> IO[str]:
    """Make ``out`` and hold its lock for as long as the returned file stays open: a second trainer
    on the same directory is refused (UsageError) instead of interleaving its files with this one's.

    flock's lock goes with the process: a killed run leaves no stale lock behind.
    """
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    f = open(out / LOCK_FILENAME, "a+")  # noqa: SIM115  (held open for the whole run)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise UsageError(
            f"{out} is in use by another cnnspec train ({holder}); wait for it to finish or choose another --out"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}\n")
    f.flush()
    return f


_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp$")


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove the half-written files (`.NAME.PID.tmp`) a run killed while writing a checkpoint or
    the model left behind, where process PID is gone; return them."""
    removed = []
    for folder in (out, out / checkpoint.CHECKPOINT_DIR):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _TEMPORARY.match(path.name)
            if match and path.is_file() and not _alive(int(match.group(1))):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def plan(out: Path, *, resume: bool, force: bool) -> Plan:
    """Decide how to start in ``out``; raise a UsageError that says how to proceed otherwise."""
    if resume and force:
        raise UsageError("--resume and --force contradict each other; pass one")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    remove_stale_temporaries(out)
    latest, damaged = checkpoint.latest_intact(out)
    if restart_count() > 0:
        # A worker died and torchrun restarted the job: carry on from the last checkpoint.
        return Plan(resume_from=latest, clear=False, auto_resumed=latest is not None, damaged=tuple(damaged))
    if resume:
        if latest is None:
            why = f" intact (damaged: {', '.join(p.name for p in damaged)})" if damaged else ""
            raise UsageError(f"--resume: no checkpoint{why} in {out}/{checkpoint.CHECKPOINT_DIR}/ to resume from")
        ensure_writable(out)
        return Plan(resume_from=latest, clear=False, damaged=tuple(damaged))
    if out.is_dir() and any(p.name != LOCK_FILENAME for p in out.iterdir()) and not force:
        raise UsageError(
            f"{out} already holds files; pass --resume to continue that run, "
            "--force to start over, or choose another --out"
        )
    ensure_writable(out)
    return Plan(resume_from=None, clear=force)


def clear_run(out: Path) -> None:
    """Remove the files of a previous run in ``out`` (for --force)."""
    for name in _RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for name in _RUN_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)


def start(out: Path, plan: Plan, config: TrainConfig, spec_text: str | None, history: list[dict[str, Any]]) -> IO[str]:
    """Take the run's lock (held until it is closed) and write its files as this start makes them (rank 0 only).

    --force's clearing comes after the lock, before anything is written;
    metrics.jsonl is rewritten from ``history`` so that it agrees with the
    checkpoint a run resumes from.
    """
    run_lock = lock(out)
    if plan.clear:
        clear_run(out)
    save_config(config, out / CONFIG_FILENAME)
    if spec_text is not None:
        (out / SPEC_FILENAME).write_text(spec_text, encoding="utf-8")
    (out / METRICS_FILENAME).write_text("".join(json.dumps(h) + "\n" for h in history), encoding="utf-8")
    return run_lock
