"""Formatting shared by the views: shapes, counts, byte sizes and receptive fields as text."""

from __future__ import annotations

from collections.abc import Sequence

# The one copy lives with the layer table, whose shape errors are written with it too.
from cnnspec.layers.kind import shape_text

__all__ = ["human", "nbytes", "rf_text", "shape_text"]


def human(n: float) -> str:
    """1.23M, 4.09G: a count with an SI suffix."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def nbytes(n: float) -> str:
    """Bytes in binary units: 97.49 MiB."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def rf_text(rf: Sequence[int]) -> str:
    """7, or 7×11 when not square; n/a (0×0) past a token mixer, where no receptive field is defined."""
    if len(rf) == 2 and rf[0] == rf[1] == 0:
        return "n/a"
    return str(rf[0]) if len(rf) == 2 and rf[0] == rf[1] else "×".join(map(str, rf))
