"""Files written so that a crash never leaves a half-written one, and read so that a damaged or
crafted one is refused with one clear line.

Writing: a temporary beside the target (``.NAME.PID.HEX.waekit-tmp``), fsync, rename, fsync of
the folder. A failed write removes its temporary; one left by a killed process (its PID no
longer runs) is removed by the next write into that folder or by
:func:`remove_stale_temporaries`. The temporary is created with mode 0o666 so that the umask
applies, as for any ``open(path, "w")``.

Reading safetensors: the header (8-byte little-endian length, then JSON) is parsed and checked
here before any tensor is touched: a known dtype, declared sizes that match their byte ranges,
ranges inside the file, a bounded element count. Files written by :func:`save_tensors` carry
a SHA-256 of their tensors in the metadata (``waekit_sha256``), so a flipped bit is caught
too, and every floating tensor must be finite.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from waekit.errors import CheckpointError, brief

__all__ = [
    "TMP_SUFFIX",
    "MAX_HEADER_BYTES",
    "MAX_TENSOR_ELEMENTS",
    "TensorInfo",
    "atomic_write_bytes",
    "atomic_write_text",
    "remove_stale_temporaries",
    "save_tensors",
    "read_header",
    "read_metadata",
    "load_tensors",
    "recovery_hint",
]

#: Temporaries are named ``.NAME.PID.HEX`` + this suffix, so they can be found and their
#: writer's PID checked before one is removed.
TMP_SUFFIX = ".waekit-tmp"
#: The safetensors format's own limit on its JSON header.
MAX_HEADER_BYTES = 100 * 2**20
#: Far above any tensor of these models (a 64x64x3 conv net's largest is ~10^7 elements).
MAX_TENSOR_ELEMENTS = 2**31
CHECKSUM_KEY = "waekit_sha256"

_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


# -- writing -------------------------------------------------------------------------------------
def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def remove_stale_temporaries(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove the temporaries in ``folder`` (of target ``name`` only, when given) whose writer
    no longer runs; returns what was removed. A live writer's temporary is left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        stem = entry.name
        if not (stem.startswith(".") and stem.endswith(TMP_SUFFIX)):
            continue
        parts = stem[1 : -len(TMP_SUFFIX)].rsplit(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or (name is not None and parts[0] != name):
            continue
        if not _pid_running(int(parts[1])):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; some file systems cannot fsync a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new, never a part."""
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)  # those of a killed writer, whatever their target
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        # 0o666 & ~umask, like open(); mkstemp would force 0o600.
        with os.fdopen(os.open(tmp, flags, 0o666), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        # Name the file the user asked for: fsync names none, os.replace the temporary.
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp)):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    _fsync_folder(folder)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    return memoryview(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy())


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over (name, dtype, shape, raw bytes) of each tensor in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()


def save_tensors(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """Save tensors as safetensors, atomically, with their checksum in the metadata. Tensors
    are made contiguous CPU copies."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {**(metadata or {}), CHECKSUM_KEY: _checksum(flat)}
    return atomic_write_bytes(path, safetensors_bytes(flat, metadata=meta))


# -- reading -------------------------------------------------------------------------------------
def recovery_hint(path: str | Path) -> str:
    """What to do about a damaged file of a run folder, as a command that works as printed."""
    path = Path(path)
    folder = path.parent
    if path.name == "model.safetensors":
        best = folder / "checkpoints" / "best-model.safetensors"
        retrain = f"retrain: waekit train --config {folder / 'config.yaml'} --out {folder}-new"
        if best.is_file():
            return f"copy the best model over it (cp {best} {path}) or {retrain}"
        return retrain
    if path.name == "last.safetensors" and folder.name == "checkpoints":
        run = folder.parent
        best = folder / "best.safetensors"
        retrain = f"retrain: waekit train --config {run / 'config.yaml'} --out {run}-new"
        if best.is_file():
            return (
                f"resume from the best checkpoint instead (cp {best} {path}, then "
                f"waekit train --out {run} --resume) or {retrain}"
            )
        return retrain
    if folder.name == "checkpoints":
        return f"delete it and use {folder / 'last.safetensors'}"
    return "write it again (it was damaged after it was written)"


def _refuse(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path} {what}; {recovery_hint(path)}")


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a safetensors header: dtype, shape and byte range in the data section."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def read_header(path: str | Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse and check the header of a safetensors file without touching its tensors.

    Layout: ``u64 little-endian n``, ``n`` bytes of JSON ``{name: {dtype, shape,
    data_offsets: [begin, end]}, "__metadata__": {str: str}}``, then the data section, in
    which each tensor fills ``[begin, end)`` and the ranges tile it exactly.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _refuse(
                path, f"is truncated or corrupt ({size} bytes, shorter than any safetensors file)"
            )
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            raise _refuse(path, f"declares a {n}-byte header, over the format's limit: corrupt")
        if n > size - 8:
            raise _refuse(
                path, f"is truncated or corrupt (its header needs {n} bytes, {size - 8} follow)"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _refuse(path, f"has a corrupt header (not JSON: {brief(str(exc))})") from exc
    if not isinstance(header, dict):
        raise _refuse(path, f"has a corrupt header (JSON {type(header).__name__}, not an object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _refuse(path, f"has corrupt metadata ({brief(metadata)}; expected strings)")
    body = size - 8 - n
    infos: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        shown = brief(name)
        if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPE_BYTES:
            raise _refuse(path, f"has a corrupt entry for tensor {shown}: {brief(entry)}")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
            raise _refuse(path, f"declares tensor {shown} with shape {brief(shape)}")
        numel = math.prod(shape)
        if numel > MAX_TENSOR_ELEMENTS:
            raise _refuse(
                path,
                f"declares tensor {shown} with {numel:.3g} elements (shape {brief(shape)}), "
                f"over the maximum of {MAX_TENSOR_ELEMENTS}: corrupt or crafted",
            )
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_count(o) for o in offsets)
            or offsets[1] - offsets[0] != numel * _DTYPE_BYTES[entry["dtype"]]
        ):
            raise _refuse(
                path,
                f"declares tensor {shown} with byte range {brief(offsets)} that does not fit "
                f"its shape {brief(shape)}",
            )
        if offsets[1] > body:
            raise _refuse(
                path,
                f"is truncated or corrupt (tensor {shown} ends at byte {offsets[1]} of a "
                f"{body}-byte body)",
            )
        infos[name] = TensorInfo(entry["dtype"], tuple(shape), offsets[0], offsets[1])
    position = 0
    for info in sorted(infos.values(), key=lambda i: (i.begin, i.end)):
        if info.begin != position:
            raise _refuse(path, "has overlapping or gapped tensor data: corrupt")
        position = info.end
    if position != body:
        raise _refuse(path, f"has {body - position} bytes after its last tensor: corrupt")
    return infos, metadata


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file, after the header checks of :func:`read_header`."""
    return read_header(path)[1]


def load_tensors(
    path: str | Path, device: str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata (JSON values decoded where they parse) of a safetensors file.

    Refused with a :class:`CheckpointError` naming the file (and the tensor): a header that
    fails :func:`read_header`, a checksum mismatch, a NaN or infinite value.
    """
    path = Path(path)
    _, meta = read_header(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EIO):
            raise
        raise _refuse(path, f"cannot be read ({brief(str(exc))}): truncated or corrupt") from exc
    expected = meta.get(CHECKSUM_KEY)
    if expected is not None and _checksum(tensors) != expected:
        raise _refuse(path, "fails its checksum: its bytes changed after it was written")
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise _refuse(path, f"holds {bad} NaN or infinite values in tensor {brief(name)}")
    if device != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    decoded: dict[str, Any] = {}
    for k, v in meta.items():
        try:
            decoded[k] = json.loads(v)
        except (json.JSONDecodeError, RecursionError):
            decoded[k] = v
    return tensors, decoded
