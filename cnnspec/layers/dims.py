"""Dimension checks that several kinds of the layer table share: the input's rank, torch dims as shape indices.

Dims count as torch's do, the batch included (dim 0), and a negative dim
counts from the end; the IR's shapes leave the batch out, so torch dim d is
index d − 1 of a shape (cnnspec.layers.kind).
"""

from __future__ import annotations

from cnnspec.diagnostics.codes import E304, E310
from cnnspec.layers.kind import Shape, ShapeError, shape_text


def batched(x: Shape) -> str:
    """x with the batch written in front, as torch dims count it: B×64×56×56."""
    return "B×" + shape_text(x) if x else "B"


def torch_dim(d: int, rank: int) -> int:
    """A dim of a tensor of ``rank`` dims with a negative one counted from the end (not checked for range)."""
    return d + rank if d < 0 else d


def dim_index(kind: str, d: int, x: Shape, what: str = "dim") -> int:
    """torch's dim d (the batch is 0; negative counts from the end) as an index into x (no batch)."""
    rank = len(x) + 1
    i = torch_dim(d, rank)
    if not 0 <= i < rank:
        raise ShapeError(
            f"{kind}: {what} {d} is out of range for the input {batched(x)} ({rank} dims: 0 to {rank - 1}, "
            f"or -1 to -{rank})",
            help="dims count as torch's do, the batch included: dim 0 is the batch, dim 1 the channels",
            code=E310,
        )
    if i == 0:
        raise ShapeError(
            f"{kind}: {what} {d} is the batch dimension of {batched(x)}, which a layer may not move or remove",
            help="dim 0 is the batch; the first dimension of the spec's shapes is dim 1",
            code=E310,
        )
    return i - 1


def need_rank(kind: str, x: Shape, rank: int, wants: str, *, help: str, got: str | None = None) -> None:
    """Refuse (E304) an input x without ``rank`` dimensions after the batch: "{kind} needs {wants} but gets {got}".

    ``got`` describes x; by default its shape and number of dimensions.
    """
    if len(x) != rank:
        if got is None:
            got = f"{shape_text(x)} ({len(x)} dimensions)"
        raise ShapeError(f"{kind} needs {wants} but gets {got}", help=help, code=E304)
