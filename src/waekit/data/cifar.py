"""CIFAR-10 in its official "python version": pickled batches of 10,000 images.

Each of ``data_batch_1`` .. ``data_batch_5`` (train) and ``test_batch`` (test) in
``cifar-10-batches-py/`` is a pickled dict with ``b"data"``, a (10000, 3072) uint8 array
whose rows are the 1024 red, 1024 green, then 1024 blue pixels of a 32x32 image in
row-major order, and ``b"labels"``, a list of 10,000 ints in 0..9.

The batches are read with a restricted unpickler: besides plain containers (which need
no imports) it resolves only the callables that rebuild a numpy array or scalar, so a
crafted file cannot make loading run any other code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from waekit.data.download import fetch
from waekit.data.files import atomic_write_stream
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
from waekit.errors import DataError, brief

__all__ = [
    "BATCH_DIR",
    "CLASSES",
    "CifarSource",
    "SPLIT_FILES",
    "TARBALL",
    "extract_tarball",
    "read_batch",
    "read_split",
    "restricted_loads",
    "RefusedGlobal",
]

BATCH_DIR = "cifar-10-batches-py"
TARBALL = "cifar-10-python.tar.gz"
SPLIT_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
HOMEPAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
#: A batch of 10,000 images is 30.7 MB; no member of the archive may declare more than this.
MAX_MEMBER_BYTES = 64 << 20


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The numpy callables an array or scalar pickle names, under their old and new modules.

    numpy 2 moved ``numpy.core`` to ``numpy._core``; pickles written by either name them by
    the module they were written with.
    """
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for pkg in ("numpy.core", "numpy._core"):
        table[(f"{pkg}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{pkg}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{pkg}.numeric", "_frombuffer")] = numeric._frombuffer
    return table


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a callable outside the allowed set."""


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 writes bytes with pickle protocol 2 as _codecs.encode(text, "latin1")
    if encoding not in ("latin1", "latin-1"):
        raise RefusedGlobal(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed = _numpy_globals() | {("_codecs", "encode"): _latin1_encode}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobal(
                f"refusing to load the global {module}.{name}: a CIFAR batch holds only a dict "
                "of numpy arrays, lists, bytes and ints"
            ) from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` allowing only containers, numbers, strings and numpy arrays.

    Byte strings written by Python 2 (the official files) come back as ``bytes``.
    """
    return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _get(batch: dict, key: str) -> Any:
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise KeyError(key)


def _clip(exc: BaseException, limit: int = 160) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as ((N, 3, 32, 32) uint8, (N,) int64)."""
    try:
        size = path.stat().st_size
        if size > MAX_MEMBER_BYTES:
            raise DataError(
                f"{path} is {size:,} bytes; a CIFAR-10 batch is about 31 MB (at most "
                f"{MAX_MEMBER_BYTES:,} accepted): it is not a batch file: {REDOWNLOAD}"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc}") from exc
    try:
        batch = restricted_loads(raw)
    except RefusedGlobal as exc:
        raise DataError(f"{path} is not a CIFAR-10 python batch: {_clip(exc)}") from exc
    except Exception as exc:  # a damaged pickle raises almost anything (EOFError, ValueError...)
        raise DataError(
            f"{path} is not a readable pickle ({type(exc).__name__}: {_clip(exc)}); the file is "
            f"truncated or damaged: {REDOWNLOAD}"
        ) from exc
    expect = 'a dict with b"data" ((N, 3072) uint8) and b"labels" (N ints in 0..9)'
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected {expect}, got a {type(batch).__name__}")
    try:
        data, labels = _get(batch, "data"), _get(batch, "labels")
    except KeyError as exc:
        # keys are quoted through brief(): a crafted key (an aliased nested tuple) would
        # otherwise expand to gigabytes inside the message
        keys = ", ".join(brief(k, 40) for k in list(batch)[:8])
        more = f", ... ({len(batch):,} keys)" if len(batch) > 8 else ""
        raise DataError(
            f"{path}: expected {expect}; the key {exc} is missing (keys: {keys}{more})"
        ) from None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or (data.shape[1] != 3072)
    ):
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f'{path}: b"data" must be a (N, 3072) uint8 array, got {_clip(what)}')
    try:
        labels = np.asarray(labels)
    except Exception as exc:
        raise DataError(f'{path}: b"labels" is not a list of ints ({_clip(exc)})') from None
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise DataError(
            f'{path}: b"labels" must hold {data.shape[0]:,} ints (one per image), got '
            f"{_clip(f'{labels.dtype} {labels.shape}')}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels must be in 0..9, found {labels.min()}..{labels.max()}")
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32))
    return images, labels.astype(np.int64)


def read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """All batches of ``split`` in ``folder`` (the ``cifar-10-batches-py`` folder)."""
    paths = [folder / f for f in SPLIT_FILES[split]]
    parts = [read_batch(p) for p in paths]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return images, labels, paths


def extract_tarball(tarball: Path, dest: Path) -> list[Path]:
    """Extract the batch files (and ``batches.meta``) from the official tarball into ``dest``.

    Only members named ``cifar-10-batches-py/<expected file>`` are read, each written through
    a temporary file and renamed, so no path in the archive can write elsewhere.
    """
    wanted = [*SPLIT_FILES["train"], *SPLIT_FILES["test"], "batches.meta"]
    written = []
    try:
        with tarfile.open(tarball, mode="r:gz") as tar:
            for name in wanted:
                try:
                    member = tar.getmember(f"{BATCH_DIR}/{name}")
                except KeyError:
                    if name == "batches.meta":
                        continue
                    raise DataError(
                        f"{tarball} has no member {BATCH_DIR}/{name}; it is not the CIFAR-10 "
                        "python archive: delete it and download it again"
                    ) from None
                if member.size > MAX_MEMBER_BYTES:
                    raise DataError(
                        f"{tarball}: {member.name} declares {member.size:,} bytes; a CIFAR-10 "
                        f"batch is about 31 MB (at most {MAX_MEMBER_BYTES:,} accepted): it is not "
                        "the CIFAR-10 python archive, delete it and download it again"
                    )
                stream = tar.extractfile(member) if member.isfile() else None
                if stream is None:
                    raise DataError(f"{tarball}: {member.name} is not a regular file")
                with stream:
                    written.append(atomic_write_stream(dest / name, stream))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(
            f"{tarball} is a truncated or corrupt archive ({exc}): delete it and download it again"
        ) from exc
    return written


@dataclass(frozen=True)
class CifarSource(Source):
    """CIFAR-10: the batches in ``cifar-10-batches-py/``, or the tarball they come in.

    A tarball found (or downloaded) is extracted into the batches on the first read and
    then deleted: the batches hold everything, and the 163 MB are saved.
    """

    def expected(self, split: str | None = None) -> tuple[str, ...]:
        splits = self.splits if split is None else (split,)
        return (TARBALL, *(f"{BATCH_DIR}/{f}" for s in splits for f in SPLIT_FILES[s]))

    def how_to_get(self, folder: Path, split: str) -> str:
        names = ", ".join(SPLIT_FILES[split])
        return (
            f"put {TARBALL} (from {HOMEPAGE}, the python version) in {folder}, or its extracted "
            f"files ({names}) in {folder / BATCH_DIR}"
        )

    def paths(self, folder: Path, split: str) -> list[Path] | None:
        batches = [folder / BATCH_DIR / f for f in SPLIT_FILES[split]]
        if all(p.is_file() for p in batches):
            return batches
        return [folder / TARBALL] if (folder / TARBALL).is_file() else None

    def fetch(self, folder: Path, split: str) -> None:
        fetch(self.name, TARBALL, folder)

    def unpack(self, files: list[Path], split: str) -> list[Path]:
        if files[0].name != TARBALL:
            return files
        batches = files[0].parent / BATCH_DIR
        extract_tarball(files[0], batches)
        files[0].unlink()
        return [batches / f for f in SPLIT_FILES[split]]

    def read(
        self,
        files: list[Path],
        split: str,
        size: int | None,
        limit: int | None,
        alloc: Alloc | None = None,
        hints: Hints = CONFIG_HINTS,
    ) -> Part:
        files = self.unpack(files, split)
        images, labels, paths = read_split(files[0].parent, split)
        images, labels = images[:limit], labels[:limit]
        return Part(deliver(resize_images(images, size), alloc), labels, paths)
