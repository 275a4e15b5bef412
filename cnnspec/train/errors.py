"""Errors the trainer reports to people as one line instead of a traceback."""

from __future__ import annotations

from cnnspec.commands.common import UsageError as CommandUsageError


class TrainError(Exception):
    """A problem that stops training; printed as one line, exit status 1."""

    exit_code = 1


class UsageError(TrainError, CommandUsageError):
    """A bad option, config value or argument; exit status 2.

    It is the command line's usage error too, so that `cnnspec check` and
    `cnnspec train` report a bad --set alike; it stays a TrainError for API callers.
    """

    exit_code = 2


class NonFiniteLoss(TrainError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(TrainError):
    """Ctrl-C or SIGTERM stopped the run after writing a checkpoint; exit status 130."""

    exit_code = 130
