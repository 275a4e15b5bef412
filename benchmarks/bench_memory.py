"""Activation memory: the static figure next to what autograd saves (CPU) or CUDA allocates.

    python benchmarks/bench_memory.py [SPEC ...] [--batch B] [--device cpu|cuda]

On CPU it counts the unique storages autograd saves (saved_tensors_hooks);
on CUDA it reads torch.cuda.memory_allocated() around a training-mode
forward and max_memory_allocated() over forward and backward.
"""

from __future__ import annotations

import argparse

import torch

from cnnspec.analysis.memory import activation_bytes, saved_tensors
from cnnspec.api import analyse
from cnnspec.backends.fx import to_graph_module


def saved_on_cpu(gm: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the unique non-parameter storages autograd saves in one training forward."""
    owned = {t.untyped_storage().data_ptr() for t in [*gm.parameters(), *gm.buffers()]}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in owned:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        gm(x)
    return sum(seen.values())


def on_cuda(gm: torch.nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(bytes held after forward, minus the output; peak bytes over forward and backward), params excluded."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = gm(x)
    torch.cuda.synchronize()
    held = torch.cuda.memory_allocated() - base - out.untyped_storage().nbytes()
    out.float().sum().backward()
    torch.cuda.synchronize()
    return held, torch.cuda.max_memory_allocated() - base


def main() -> None:
    """Print static and measured activation memory for each spec."""
    p = argparse.ArgumentParser()
    p.add_argument("specs", nargs="*", default=["specs/resnet50.cnn", "specs/googlenet.cnn", "specs/vgg16.cnn"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    for spec in args.specs:
        c = analyse(spec)
        gm = to_graph_module(c.graph).to(args.device).train()
        x = torch.randn(args.batch, *c.graph.input_shape, device=args.device)
        static = activation_bytes(saved_tensors(c.graph, device=args.device), args.batch)
        if args.device == "cuda":
            x.requires_grad_(False)
            held, peak = on_cuda(gm, x)
            # The input batch is allocated before `base`, so it is not in `held`; add it back.
            held += x.untyped_storage().nbytes()
            print(f"{spec}: static {static:,} B, cuda held {held:,} B ({held / static:.4f}x), peak {peak:,} B")
        else:
            measured = saved_on_cpu(gm, x)
            print(f"{spec}: static {static:,} B, cpu saved {measured:,} B, equal: {static == measured}")


if __name__ == "__main__":
    main()
