"""The IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed, and their source.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (TT the element type, 0x08 for
unsigned bytes; DD the number of dimensions), DD big-endian uint32 sizes, then the
elements in row-major order. Images are ``00 00 08 03`` (N, rows, cols), labels
``00 00 08 01`` (N,). Only unsigned-byte files are read: every official file is one.
Whether a file is gzip is decided by its first two bytes (1f 8b), not by its name.

A file is decompressed as a stream, never past what its header declares (plus one byte, to
tell a file longer than its header), and a header declaring more than the data set can hold
(e.g. 10^10 images) is refused before anything is allocated: a gzip bomb costs nothing.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from waekit.data.download import fetch
from waekit.data.source import (
    CONFIG_HINTS,
    REDOWNLOAD,
    Alloc,
    Hints,
    Part,
    Source,
    deliver,
)
from waekit.data.transforms import resize_images
from waekit.errors import DataError

__all__ = ["IDX_FILES", "IDX_UBYTE", "IdxSource", "parse_idx", "read_idx", "read_maybe_gzip"]

IDX_UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
#: (images, labels) file stems per split, as released; each may end in ``.gz``.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_GZIP_ERRORS = (EOFError, OSError, zlib.error)  # cut short; BadGzipFile (OSError); bad bytes


def _open(path: Path) -> BinaryIO:
    """``path`` as a stream of its (gunzipped when it starts with 1f 8b) bytes."""
    try:
        with path.open("rb") as f:
            magic = f.read(2)
        return gzip.open(path, "rb") if magic == GZIP_MAGIC else path.open("rb")  # type: ignore[return-value]
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc}") from exc


def _read(stream: BinaryIO, n: int, path: Path) -> bytes:
    try:
        return stream.read(n)
    except _GZIP_ERRORS as exc:
        raise DataError(
            f"{path} is a truncated or corrupt gzip file ({exc}); {REDOWNLOAD}"
        ) from exc


def read_maybe_gzip(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of ``path``, gunzipped when it starts with the gzip magic number.

    With ``max_bytes``, a file whose content is longer is refused after reading at most
    ``max_bytes + 1`` bytes of it.
    """
    with _open(path) as stream:
        data = _read(stream, -1 if max_bytes is None else max_bytes + 1, path)
    if max_bytes is not None and len(data) > max_bytes:
        raise DataError(
            f"{path} holds more than {max_bytes:,} bytes (uncompressed), more than this data set "
            f"can hold; the file is damaged or not what its name says: {REDOWNLOAD}"
        )
    return data


def _header(data: bytes, source: str, ndim: int | None) -> tuple[tuple[int, ...], int]:
    """(dims, header length) of an IDX file whose first bytes are ``data``."""
    if len(data) < 4:
        raise DataError(
            f"{source}: only {len(data)} bytes, too short for an IDX header; the file is "
            f"truncated: {REDOWNLOAD}"
        )
    magic = data[:4].hex()
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{source}: wrong magic number 0x{magic}; an IDX file starts with 0x0000, then its "
            "element type and number of dimensions (MNIST images 0x00000803, labels "
            f"0x00000801). It is not an IDX file (or it is damaged): {REDOWNLOAD}"
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
            f"has {len(data)}; the file is truncated: {REDOWNLOAD}"
        )
    return struct.unpack(f">{dims_n}I", data[4:header]), header


def _check_size(dims: tuple[int, ...], actual: int, source: str) -> int:
    expected = math.prod(dims)
    if actual != expected:
        shape = " x ".join(f"{d:,}" for d in dims)
        what = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{source}: the header says {shape} = {expected:,} bytes of data but the file holds "
            f"{actual:,}; the file is {what}: {REDOWNLOAD}"
        )
    return expected


def _array(data: bytes, dims: tuple[int, ...], offset: int) -> np.ndarray:
    if math.prod(dims) == 0:
        return np.zeros(dims, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8, count=math.prod(dims), offset=offset).reshape(dims)


def parse_idx(data: bytes, source: str, ndim: int | None = None) -> np.ndarray:
    """Decode the bytes of an unsigned-byte IDX file into a read-only uint8 array.

    ``ndim`` (3 for images, 1 for labels) is checked when given. Any inconsistency raises
    :class:`DataError` naming ``source``.
    """
    dims, header = _header(data, source, ndim)
    _check_size(dims, len(data) - header, source)
    return _array(data, dims, header)


def read_idx(path: Path, ndim: int | None = None, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) from disk; see :func:`parse_idx`.

    A header declaring more than ``max_bytes`` of data is refused before reading on, and
    no more than the declared size (+1 byte) is ever decompressed.
    """
    with _open(path) as stream:
        head = _read(stream, 4, path)
        if len(head) == 4 and head[:2] == b"\x00\x00":
            head += _read(stream, 4 * head[3], path)
        dims, header = _header(head, str(path), ndim)
        declared = math.prod(dims)
        if max_bytes is not None and declared > max_bytes:
            shape = " x ".join(f"{d:,}" for d in dims)
            raise DataError(
                f"{path}: the header declares {shape} = {declared:,} bytes of data, more than "
                f"the {max_bytes:,} this data set can hold; the file is damaged or not what its "
                f"name says: {REDOWNLOAD}"
            )
        packed = isinstance(stream, gzip.GzipFile)
        if not packed:  # a raw file's size says at once whether the header is true
            _check_size(dims, path.stat().st_size - header, str(path))
        body = _read(stream, declared + 1, path)
    if len(body) > declared and packed:
        raise DataError(
            f"{path}: the header says {' x '.join(f'{d:,}' for d in dims)} = {declared:,} bytes "
            f"of data but the file holds more; the file is longer than its header says: "
            f"{REDOWNLOAD}"
        )
    # a raw file's length is its size on disk, which says by how much it is off
    _check_size(dims, len(body) if packed else path.stat().st_size - header, str(path))
    return _array(body, dims, 0)


@dataclass(frozen=True)
class IdxSource(Source):
    """MNIST-style data sets: an images and a labels IDX file per split, gzip or raw."""

    side: int = 28

    def expected(self, split: str | None = None) -> tuple[str, ...]:
        splits = self.splits if split is None else (split,)
        return tuple(f"{stem}.gz" for s in splits for stem in IDX_FILES[s])

    def how_to_get(self, folder: Path, split: str) -> str:
        return f"put {' and '.join(self.expected(split))} (gzip or unpacked) in {folder}"

    def paths(self, folder: Path, split: str) -> list[Path] | None:
        found = []
        for stem in IDX_FILES[split]:
            hits = [
                folder / (stem + ext) for ext in (".gz", "") if (folder / (stem + ext)).is_file()
            ]
            if not hits:
                return None
            found.append(hits[0])
        return found

    def fetch(self, folder: Path, split: str) -> None:
        for stem in IDX_FILES[split]:
            if not any((folder / (stem + ext)).is_file() for ext in (".gz", "")):
                fetch(self.name, stem + ".gz", folder)

    def read(
        self,
        files: list[Path],
        split: str,
        size: int | None,
        limit: int | None,
        alloc: Alloc | None = None,
        hints: Hints = CONFIG_HINTS,
    ) -> Part:
        images_path, labels_path = files
        images = read_idx(images_path, ndim=3, max_bytes=self.max_images * self.side**2)
        labels = read_idx(labels_path, ndim=1, max_bytes=self.max_images)
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} holds {len(images):,} images but {labels_path} holds "
                f"{len(labels):,} labels; the two files come from different releases or one is "
                "damaged: replace both"
            )
        n_classes = len(self.classes or ())
        if labels.size and labels.max() >= n_classes:
            bad = int(np.argmax(labels >= n_classes))
            raise DataError(
                f"{labels_path}: label {labels[bad]} at index {bad} is outside 0..{n_classes - 1}; "
                f"the file is damaged: {REDOWNLOAD}"
            )
        n, h, w = images.shape
        images, labels = images.reshape(n, 1, h, w)[:limit], labels[:limit]
        return Part(deliver(resize_images(images, size), alloc), labels.astype(np.int64), files)
