"""A progress bar per epoch (tqdm, on rank 0, only on a terminal) and plain log lines."""

from __future__ import annotations

import sys


class Bar:
    """An epoch's progress bar as the loops use it; this base shows nothing (when no bar is shown)."""

    def update(self) -> None:
        """Count one step."""

    def show(self, *, loss: float, lr: float, rate: float) -> None:
        """Show the latest figures."""

    def close(self) -> None:
        """Finish the bar."""


class _TqdmBar(Bar):
    def __init__(self, desc: str, total: int, initial: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, leave=False,
                         dynamic_ncols=True, unit="step")

    def update(self) -> None:
        self._bar.update(1)

    def show(self, *, loss: float, lr: float, rate: float) -> None:
        self._bar.set_postfix_str(f"loss {loss:.4f}  lr {lr:.3g}  {rate:.0f} img/s", refresh=False)

    def close(self) -> None:
        self._bar.close()


class Progress:
    """Makes one bar per epoch when enabled and stderr is a terminal (or forced)."""

    def __init__(self, *, enabled: bool, force: bool = False) -> None:
        self.enabled = enabled and (force or sys.stderr.isatty())

    def epoch(self, epoch: int, epochs: int, total: int, initial: int) -> Bar:
        """The bar for ``epoch`` (0-based) of ``epochs``."""
        if not self.enabled:
            return Bar()
        return _TqdmBar(f"epoch {epoch + 1}/{epochs}", total, initial)

    @staticmethod
    def write(msg: str) -> None:
        """Print a line without tearing an active bar."""
        try:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stdout)
        except ImportError:
            print(msg)
        sys.stdout.flush()
