"""Exceptions whose message is meant for the user: what was wrong, with the value, and the fix."""

from __future__ import annotations

import reprlib
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxlevel = 3


def brief(value: Any, limit: int = 80) -> str:
    """A repr of ``value`` for an error message, bounded to about ``limit`` characters.

    User input can be huge (a YAML alias bomb expands to hundreds of MB): every message that
    quotes a value quotes it through this, never through a plain ``repr``.
    """
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
