"""Atomic writes: a temporary file in the destination folder, fsync, then rename."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write_stream"]


def atomic_write_stream(dest: Path, stream: BinaryIO) -> Path:
    """Copy ``stream`` to ``dest``; readers see no file or the complete one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest
