"""The run directory: refuse to overwrite a run unless told to resume or start over."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cnnspec.train import checkpoint
from cnnspec.train.config import CONFIG_FILENAME
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


def restart_count() -> int:
    """How often torchrun has restarted this job (0 when not restarted or not under torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def plan(out: Path, *, resume: bool, force: bool) -> Plan:
    """Decide how to start in ``out``; raise a UsageError that says how to proceed otherwise."""
    if resume and force:
        raise UsageError("--resume and --force contradict each other; pass one")
    latest = checkpoint.latest_checkpoint(out)
    if restart_count() > 0:
        # A worker died and torchrun restarted the job: carry on from the last checkpoint.
        return Plan(resume_from=latest, clear=False, auto_resumed=latest is not None)
    if resume:
        if latest is None:
            raise UsageError(f"--resume: no checkpoint in {out}/{checkpoint.CHECKPOINT_DIR}/ to resume from")
        return Plan(resume_from=latest, clear=False)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(
            f"{out} already holds files; pass --resume to continue that run, "
            "--force to start over, or choose another --out"
        )
    return Plan(resume_from=None, clear=force)


def clear_run(out: Path) -> None:
    """Remove the files of a previous run in ``out`` (for --force)."""
    for name in _RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for name in _RUN_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)
