"""The IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (TT the element type, 0x08 for
unsigned bytes; DD the number of dimensions), DD big-endian uint32 sizes, then the
elements in row-major order. Images are ``00 00 08 03`` (N, rows, cols), labels
``00 00 08 01`` (N,). Only unsigned-byte files are read: every official file is one.
Whether a file is gzip is decided by its first two bytes (1f 8b), not by its name.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from waekit.errors import DataError

__all__ = ["parse_idx", "read_idx", "read_maybe_gzip", "IDX_UBYTE"]

IDX_UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
_REDOWNLOAD = "delete it and download it again"


def read_maybe_gzip(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped when it starts with the gzip magic number."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc}") from exc
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        # EOFError: the stream stops early; BadGzipFile (an OSError) / zlib.error: bad bytes
        raise DataError(
            f"{path} is a truncated or corrupt gzip file ({exc}); {_REDOWNLOAD}"
        ) from exc


def parse_idx(data: bytes, source: str, ndim: int | None = None) -> np.ndarray:
    """Decode the bytes of an unsigned-byte IDX file into a read-only uint8 array.

    ``ndim`` (3 for images, 1 for labels) is checked when given. Any inconsistency raises
    :class:`DataError` naming ``source``.
    """
    if len(data) < 4:
        raise DataError(
            f"{source}: only {len(data)} bytes, too short for an IDX header; the file is "
            f"truncated: {_REDOWNLOAD}"
        )
    magic = data[:4].hex()
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{source}: wrong magic number 0x{magic}; an IDX file starts with 0x0000, then its "
            "element type and number of dimensions (MNIST images 0x00000803, labels "
            f"0x00000801). It is not an IDX file (or it is damaged): {_REDOWNLOAD}"
        )
    if data[2] != IDX_UBYTE:
        raise DataError(
            f"{source}: magic number 0x{magic} has element type 0x{data[2]:02x}; only unsigned "
            "bytes (0x08) are read, as in the official MNIST and Fashion-MNIST files"
        )
    dims_n = data[3]
    if dims_n == 0:
        raise DataError(f"{source}: magic number 0x{magic} declares 0 dimensions")
    if ndim is not None and dims_n != ndim:
        kind = {3: "images (0x00000803)", 1: "labels (0x00000801)"}.get(ndim, f"{ndim}-D")
        raise DataError(
            f"{source}: magic number 0x{magic} declares {dims_n} dimensions but {kind} were "
            "expected; are the images and labels files swapped?"
        )
    header = 4 + 4 * dims_n
    if len(data) < header:
        raise DataError(
            f"{source}: the header of {dims_n} dimensions needs {header} bytes but the file "
            f"has {len(data)}; the file is truncated: {_REDOWNLOAD}"
        )
    dims = struct.unpack(f">{dims_n}I", data[4:header])
    expected = math.prod(dims)
    actual = len(data) - header
    if actual != expected:
        shape = " x ".join(f"{d:,}" for d in dims)
        what = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{source}: the header says {shape} = {expected:,} bytes of data but the file holds "
            f"{actual:,}; the file is {what}: {_REDOWNLOAD}"
        )
    if expected == 0:
        return np.zeros(dims, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(dims)


def read_idx(path: Path, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) from disk; see :func:`parse_idx`."""
    return parse_idx(read_maybe_gzip(path), str(path), ndim)
