"""``cnnspec train --nproc-per-node N``: start N workers with torchrun's elastic launcher."""

from __future__ import annotations

import sys

PROG = "cnnspec train"


def launch(worker_argv: list[str], *, nproc_per_node: int, max_restarts: int = 0) -> int:
    """Run ``python -m cnnspec train WORKER_ARGV`` on N local workers, as torchrun would.

    Uses ``torch.distributed.run`` itself (standalone rendezvous on this host),
    so restarts, environment and process handling are torchrun's own.
    """
    import os

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # torchrun would give each worker one thread; share the cores out instead.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpus // nproc_per_node)))
    args = parse_args([
        "--standalone",
        f"--nproc-per-node={nproc_per_node}",
        f"--max-restarts={max_restarts}",
        "--module",
        "cnnspec",
        "train",
        *worker_argv,
    ])
    try:
        run(args)
    except ChildFailedError as exc:
        codes = [f.exitcode for f in exc.failures.values()]
        code = next((c for c in codes if c and c > 0), 1)
        print(f"{PROG}: {len(codes)} worker(s) failed (exit status {code}); see their messages above",
              file=sys.stderr)
        return code
    except (KeyboardInterrupt, SignalException):
        # Ctrl-C or SIGTERM: the workers got the signal too and checkpointed if they could.
        print(f"{PROG}: interrupted; continue with --resume", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"{PROG}: error: the launcher failed: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    return 0
