"""Exceptions whose message is meant for the user: what was wrong, with the value, and the fix."""

from __future__ import annotations


class WaekitError(Exception):
    """Base class: the command line prints these without a traceback."""


class ConfigError(WaekitError, ValueError):
    """A configuration key, value or preset is wrong."""


class DataError(WaekitError, ValueError):
    """A data file or folder is missing, truncated, corrupt or inconsistent."""


class CheckpointError(WaekitError, ValueError):
    """A run folder or checkpoint is missing or unreadable."""


class TrainingDiverged(WaekitError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(WaekitError):
    """SIGINT or SIGTERM stopped training after its checkpoint was saved."""

    exit_code = 130
