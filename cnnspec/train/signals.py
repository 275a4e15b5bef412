"""Ctrl-C and SIGTERM ask the loop to stop at the next safe point.

The handler only sets a flag: the loop checks it between steps, agrees with
the other workers to stop at the same step, writes a checkpoint and exits.
torchrun forwards the signal to its workers while the terminal also delivers
it, so repeats are counted and only the third one interrupts at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class StopFlag:
    """Set by SIGINT/SIGTERM; read by the training loop."""

    def __init__(self) -> None:
        self.count = 0
        self.signame = ""

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.count > 0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.signame = signal.Signals(signum).name
        if self.count >= 3:
            raise KeyboardInterrupt


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Install the handlers for the duration of a run (main thread only)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.signal(s, flag._handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
