"""Exceptions whose message is meant for the user: what was wrong, with the value, and the fix."""

from __future__ import annotations

import errno
import os
import reprlib
from typing import Any
from urllib.error import URLError

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


def os_error_message(exc: OSError) -> str:
    """One line for a file-system fault: what happened to which path, and what to do."""
    if isinstance(exc, (ConnectionError, TimeoutError, URLError)):
        return (
            f"network failure ({brief(str(exc), 120)}); check the connection and run the "
            "command again"
        )
    path = exc.filename if exc.filename is not None else "a file"
    where = f"{path!s}" if not isinstance(path, bytes) else brief(path)
    folder = os.path.dirname(os.path.abspath(where)) if exc.filename is not None else "."
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left on the device (or over quota) while writing {where}; free some "
            f"space (see: df -h {folder}) and run the command again"
        )
    if code == errno.EROFS:
        return f"{where} is on a read-only file system; choose a folder on a writable one"
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied: {where}; check its permissions (see: ls -ld {folder}) or "
            "choose another folder"
        )
    if code == errno.ENOENT:
        return f"{where} does not exist; check the path"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return f"{where} (or a folder on its path) is a file, not a folder; choose another path"
    if code == errno.EISDIR:
        return f"{where} is a folder, not a file; pass a file path"
    reason = exc.strerror or brief(str(exc))
    return f"{reason}: {where}; check the path and the device, then run the command again"
