"""Errors the trainer reports to people as one line instead of a traceback."""

from __future__ import annotations


class TrainError(Exception):
    """A problem that stops training; printed as one line, exit status 1."""

    exit_code = 1


class UsageError(TrainError):
    """A bad option, config value or argument; exit status 2."""

    exit_code = 2


class NonFiniteLoss(TrainError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(TrainError):
    """Ctrl-C or SIGTERM stopped the run after writing a checkpoint; exit status 130."""

    exit_code = 130
