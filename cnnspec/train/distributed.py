"""Process group setup from torchrun's environment: gloo on CPU, NCCL on GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from cnnspec.train.errors import UsageError


@dataclass
class DistEnv:
    """Who this process is in the job and which device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one worker."""
        return self.world_size > 1

    @property
    def backend(self) -> str:
        """The collective backend in use (or 'none')."""
        return dist.get_backend() if dist.is_initialized() else "none"


def env_rank() -> int:
    """This process's global rank as torchrun sets it (0 when not under torchrun)."""
    return int(os.environ.get("RANK", "0"))


def setup(device: str = "auto") -> DistEnv:
    """Join the job torchrun (or a test harness) described in the environment."""
    rank = env_rank()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA device is available")
    if use_cuda:
        dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
        if world > 1 and "OMP_NUM_THREADS" not in os.environ:
            # Workers on one host share its cores; oversubscribing them is much slower.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            store=_store(rank, world),
            rank=rank,
            world_size=world,
            device_id=dev if use_cuda else None,
        )
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, local_world_size=local_world, device=dev)


def _store(rank: int, world: int) -> dist.Store:
    """The rendezvous store of this attempt, from MASTER_ADDR/MASTER_PORT.

    torchrun's c10d rendezvous keeps one agent store for all restarts of a job,
    and init_process_group would use its keys unprefixed, so a restarted worker
    can read the address of a dead peer from the previous attempt and fail to
    connect. A prefix per restart keeps the attempts apart.
    """
    try:
        host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    except (KeyError, ValueError):
        raise UsageError(
            "WORLD_SIZE > 1 but MASTER_ADDR/MASTER_PORT are not set; start workers with torchrun"
        ) from None
    agent_hosts = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(
        host, port, world_size=world, is_master=rank == 0 and not agent_hosts, timeout=timedelta(minutes=30)
    )
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"cnnspec/attempt{attempt}", store)


def teardown() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (or max) ``tensor`` over workers in place; a no-op for one worker."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return tensor


def gather_objects(obj: Any) -> list[Any]:
    """Every worker's ``obj``, in rank order (collective)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait for all workers."""
    if dist.is_initialized():
        dist.barrier()
