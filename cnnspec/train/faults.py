"""Fault injection, for tests only.

``CNNSPEC_FAULT`` makes a run fail on purpose so tests can check that the
trainer survives it. Format: ``KIND@step:N[,rank:R]`` where KIND is

- ``nan``: the loss of optimizer step N becomes NaN,
- ``kill``: the worker kills itself with SIGKILL before step N,
- ``sigint``: the worker sends itself SIGINT (as Ctrl-C would) before step N.

N counts optimizer steps from the start of the run (0-based); R defaults to
rank 0. A fault fires only in the first attempt of a torchrun job (restart
count 0), so a restarted job can finish. Not meant for anything but testing.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass

ENV = "CNNSPEC_FAULT"
_SPEC = re.compile(r"^(nan|kill|sigint)@step:(\d+)(?:,rank:(\d+))?$")


@dataclass(frozen=True)
class Fault:
    """One injected fault."""

    kind: str
    step: int
    rank: int = 0

    def fires(self, step: int, rank: int) -> bool:
        """Whether this fault applies to optimizer step ``step`` on ``rank``."""
        return step == self.step and rank == self.rank

    def before_step(self, step: int, rank: int) -> None:
        """Kill or interrupt this process if the fault is due."""
        if not self.fires(step, rank):
            return
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.kind == "sigint":
            os.kill(os.getpid(), signal.SIGINT)


def from_env() -> Fault | None:
    """The fault requested in ``CNNSPEC_FAULT``, unless this is a torchrun restart."""
    text = os.environ.get(ENV, "").strip()
    if not text or int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0:
        return None
    m = _SPEC.match(text)
    if not m:
        raise ValueError(f"{ENV}={text!r}: expected KIND@step:N[,rank:R] with KIND nan, kill or sigint")
    return Fault(kind=m.group(1), step=int(m.group(2)), rank=int(m.group(3) or 0))
