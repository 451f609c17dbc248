"""Atomic writes: a temporary file in the destination folder, fsync, then rename.

A temporary file is named ``.<final name>.<pid>.<random>.part``, beside its final name, and
is created with the mode the umask gives (not ``mkstemp``'s 0600). A process killed while
writing leaves its ``.part`` behind: :func:`clean_orphans`, run before each new write into a
folder, removes those whose process is gone (or, without a pid in the name, that are older
than :data:`ORPHAN_AGE_S`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

__all__ = ["ORPHAN_AGE_S", "atomic_write_stream", "clean_orphans", "new_temp"]

#: A ``.part`` file whose writer cannot be told is taken for an orphan after this long.
ORPHAN_AGE_S = 24 * 3600.0


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def new_temp(dest: Path) -> tuple[int, Path]:
    """(an open descriptor, the path) of a new temporary file beside ``dest``."""
    fd, name = tempfile.mkstemp(
        dir=dest.parent, prefix=f".{dest.name}.{os.getpid()}.", suffix=".part"
    )
    os.fchmod(fd, _file_mode())
    return fd, Path(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clean_orphans(folder: Path) -> list[Path]:
    """Remove the ``.*.part`` files in ``folder`` left by writers that died; return them."""
    removed = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(".")]
    except OSError:  # absent or unreadable: nothing to clean
        return removed
    now = time.time()
    for p in candidates:
        parts = p.name.split(".")
        if parts[-1] != "part" or len(parts) < 4:
            continue
        try:
            if parts[-3].isdigit():
                orphan = int(parts[-3]) != os.getpid() and not _alive(int(parts[-3]))
            else:
                orphan = now - p.stat().st_mtime > ORPHAN_AGE_S
            if orphan:
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


def atomic_write_stream(dest: Path, stream: BinaryIO) -> Path:
    """Copy ``stream`` to ``dest``; readers see no file or the complete one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(dest.parent)
    fd, tmp = new_temp(dest)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
