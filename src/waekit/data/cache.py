"""The prepared cache: each split as one uint8 ``.npy``, memory-mapped when loaded.

Layout under ``<root>/<name>/prepared/``, for the cache key ``<split>-<size>px`` (the
split and the output side in pixels, e.g. ``train-64px``; a data set's native size when
``image_size`` is not given, 28 for MNIST, 32 for CIFAR-10, 64 for CelebA)::

    train-64px.json                   the record, written last: what, from which files
    train-64px.<token>.images.npy     (N, C, H, W) uint8
    train-64px.<token>.labels.npy     (N,) int64; absent for unlabelled data

The arrays are written under temporary names and renamed, then the record is replaced
atomically; the record names the arrays by their ``token``, so a reader sees the old
complete cache or the new one, never a mixture. A cache is used when its record and
arrays agree, and ignored (and rebuilt) when a source file it records has since changed
size or modification time. A cache whose sources were deleted is still used.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from waekit.data.files import clean_orphans, new_temp
from waekit.errors import DataError

__all__ = [
    "CACHE_VERSION",
    "CacheUnwritable",
    "CacheWriter",
    "cache_key",
    "fingerprint",
    "read_cache",
    "write_cache",
]

log = logging.getLogger("waekit.data")

CACHE_VERSION = 1
PREPARED = "prepared"


def cache_key(split: str, size: int) -> str:
    return f"{split}-{size}px"


def fingerprint(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """What identifies a version of each source file: its path, size and mtime."""
    records = []
    for p in paths:
        st = p.stat()
        records.append({"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return records


def _stale(sources: list[dict[str, Any]]) -> str | None:
    for rec in sources:
        p = Path(rec["path"])
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if st.st_size != rec["size"] or st.st_mtime_ns != rec["mtime_ns"]:
            return str(p)
    return None


def read_cache(
    folder: Path, split: str, size: int
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]] | None:
    """``(images, labels, record)`` from the cache under ``folder``, or None when absent/stale."""
    prepared = folder / PREPARED
    key = cache_key(split, size)
    record_path = prepared / f"{key}.json"
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
        if record.get("version") != CACHE_VERSION:
            return None
        changed = _stale(record["sources"])
        if changed is not None:
            log.info("prepared cache %s is stale: %s changed", record_path, changed)
            return None
        images = np.load(prepared / record["images"], mmap_mode="r", allow_pickle=False)
        if images.dtype != np.uint8 or list(images.shape) != record["shape"]:
            raise ValueError(
                f"images are {images.dtype} {images.shape}, record says {record['shape']}"
            )
        labels = None
        if record["labels"] is not None:
            labels = np.load(prepared / record["labels"], allow_pickle=False)
            if labels.dtype != np.int64 or labels.shape != (images.shape[0],):
                raise ValueError(f"labels are {labels.dtype} {labels.shape}")
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        log.warning("ignoring the damaged prepared cache %s: %s", record_path, exc)
        return None
    return images, labels, record


def _tmp(prepared: Path, name: str) -> Path:
    fd, tmp = new_temp(prepared / name)
    os.close(fd)
    return tmp


class CacheUnwritable(DataError):
    """The prepared cache cannot be created (a read-only or full data root)."""


class CacheWriter:
    """Write one split's cache; ``images`` is a memory map to fill before :meth:`commit`."""

    def __init__(self, folder: Path, split: str, size: int, shape: tuple[int, ...]) -> None:
        self.prepared = folder / PREPARED
        self.key = cache_key(split, size)
        self.token = secrets.token_hex(4)
        self._tmp_images: Path | None = None
        self._tmp_labels: Path | None = None
        self._tmp_record: Path | None = None
        if not shape or shape[0] == 0:
            raise DataError(f"{self.key}: a split with no images has no prepared cache")
        try:
            self.prepared.mkdir(parents=True, exist_ok=True)
            clean_orphans(self.prepared)
            self._tmp_images = _tmp(self.prepared, f"{self.key}.images.npy")
            self.images = np.lib.format.open_memmap(
                self._tmp_images, mode="w+", dtype=np.uint8, shape=shape
            )
        except OSError as exc:
            self.abort()
            raise CacheUnwritable(
                f"cannot write the prepared cache in {self.prepared}: {exc}"
            ) from exc

    def commit(self, labels: np.ndarray | None, record: dict[str, Any]) -> list[Path]:
        """Make the cache visible; returns the paths written (record last)."""
        try:
            self.images.flush()
            shape = list(self.images.shape)
            del self.images  # close the memory map before the rename
            assert self._tmp_images is not None
            with open(self._tmp_images, "rb+") as f:
                os.fsync(f.fileno())
            images_name = f"{self.key}.{self.token}.images.npy"
            written = [self.prepared / images_name]
            labels_name = None
            if labels is not None:
                self._tmp_labels = _tmp(self.prepared, f"{self.key}.labels.npy")
                with open(self._tmp_labels, "wb") as f:
                    np.save(f, np.ascontiguousarray(labels, dtype=np.int64))
                    f.flush()
                    os.fsync(f.fileno())
                labels_name = f"{self.key}.{self.token}.labels.npy"
                os.replace(self._tmp_labels, self.prepared / labels_name)
                written.append(self.prepared / labels_name)
            os.replace(self._tmp_images, written[0])
            full = {
                **record,
                "version": CACHE_VERSION,
                "shape": shape,
                "images": images_name,
                "labels": labels_name,
            }
            record_path = self.prepared / f"{self.key}.json"
            self._tmp_record = _tmp(self.prepared, record_path.name)
            self._tmp_record.write_text(json.dumps(full, indent=1))
            os.replace(self._tmp_record, record_path)
            written.append(record_path)
        except OSError as exc:
            self.abort()
            raise DataError(f"cannot write the prepared cache in {self.prepared}: {exc}") from exc
        for old in self.prepared.glob(f"{self.key}.*.npy"):
            if self.token not in old.name:
                old.unlink(missing_ok=True)
        return written

    def abort(self) -> None:
        if hasattr(self, "images"):
            del self.images
        for tmp in (self._tmp_images, self._tmp_labels, self._tmp_record):
            if tmp is not None:
                tmp.unlink(missing_ok=True)


def write_cache(
    folder: Path,
    split: str,
    size: int,
    images: np.ndarray,
    labels: np.ndarray | None,
    record: dict[str, Any],
) -> list[Path]:
    """Write arrays already in memory as the cache of (split, size)."""
    writer = CacheWriter(folder, split, size, images.shape)
    try:
        writer.images[...] = images
    except BaseException:
        writer.abort()
        raise
    return writer.commit(labels, record)
