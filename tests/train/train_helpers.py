"""Helpers for the trainer tests: run the real CLI in a subprocess, train in this process, read weights back."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LENET = REPO / "specs" / "lenet5.cnn"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m cnnspec train ARGS`` from the repository root; output captured.

    One intra-op thread a process unless ``env`` says otherwise, as each xdist worker has (tests/conftest.py):
    a run of two threads beside the other worker on CI's two cores spends its time waiting for a core.
    """
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("CNNSPEC_FAULT", "TORCHELASTIC"))}
    full_env = {**inherited, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cnnspec", "train", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def launch_here(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``cnnspec train ARGS --nproc-per-node N`` with this process as torchrun's launcher: as ``run_cli``
    but without a launcher process's seconds of imports; the workers are real processes all the same.

    What torchrun's launcher changes in its process (environment, signal handlers) is put back after;
    the workers' output, written to the inherited file descriptors, is read from temporary files. A run
    still going after ``timeout`` seconds gets SIGTERM, as torchrun's own would: it stops its workers.
    """
    import signal
    import tempfile
    import threading

    from cnnspec.train import cli

    saved_env = dict(os.environ)
    handled = [getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT") if hasattr(signal, name)]
    saved_handlers = {s: signal.getsignal(s) for s in handled}
    for key in [k for k in os.environ if k.startswith(("CNNSPEC_FAULT", "TORCHELASTIC"))]:
        del os.environ[key]
    os.environ.update({"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(env or {})})
    watchdog = threading.Timer(timeout, os.kill, (os.getpid(), signal.SIGTERM))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        saved_fds = os.dup(1), os.dup(2)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            with redirect_stdout(out), redirect_stderr(err):
                signal.signal(signal.SIGTERM, _timed_out)  # until torchrun puts in its own
                watchdog.start()
                code = cli.main(list(args))
        finally:
            watchdog.cancel()
            out.flush()
            err.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            for sig, handler in saved_handlers.items():
                signal.signal(sig, handler)
            os.environ.clear()
            os.environ.update(saved_env)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(["cnnspec", "train", *args], code, out.read(), err.read())


def _timed_out(signum: int, frame: object) -> None:
    raise TimeoutError("the launch ran past its timeout")


def train_here(spec: str | Path, out: Path, **options: object) -> Path:
    """One process's run through ``cnnspec.train`` in this process, with one intra-op thread.

    The runs it is compared with are workers started with OMP_NUM_THREADS=1: one thread here too keeps
    the float reductions in their order (the thread count is put back after). No subprocess, so no
    seconds of imports before training; the trainer seeds torch itself, so earlier tests do not matter.
    """
    import torch

    import cnnspec

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with redirect_stdout(io.StringIO()):
            cnnspec.train(str(spec), out=out, progress="off", **options)
    finally:
        torch.set_num_threads(threads)
    return out


def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this test session that every pytest-xdist worker sees (the base folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-runs"
    folder.mkdir(exist_ok=True)
    return folder


def made_once(out: Path, make: Callable[[Path], object]) -> Path:
    """The run in ``out``, made by whichever worker asks first; the others wait for it and reuse it.

    Module fixtures are made once per xdist worker, so a run two tests compare against was made twice
    when their tests landed on different workers; a lock beside ``out`` makes it once a session. A test
    that goes on with such a run (resumes it) copies it first.
    """
    from filelock import FileLock  # a dependency of torch

    made = out.with_name(f"{out.name}.made")
    with FileLock(f"{out}.lock"):
        if not made.is_file():
            shutil.rmtree(out, ignore_errors=True)  # left by a make that failed: again, from nothing
            make(out)
            made.touch()
    return out


def load_weights(path: Path) -> dict:
    """The tensors of a model.safetensors file."""
    from safetensors.torch import load_file

    return load_file(str(path))


def initial_weights(spec: str | Path, seed: int, **params: object) -> dict:
    """The weights a run with ``--seed seed`` starts from: the trainer seeds torch, then compiles the spec.

    test_train_aux's weight-0 case checks this: a head that gets no gradient
    ends training exactly equal to these weights.
    """
    import torch

    import cnnspec

    torch.manual_seed(seed)
    return cnnspec.compile(str(spec), **params).state_dict()
