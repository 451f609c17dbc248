"""Your own images: a folder of png, jpg, jpeg, bmp or webp files (``data.name=folder``).

Use: ``waekit train --preset PRESET --set data.name=folder --set data.path=DIR``, in Python
``load_dataset("folder", "train", path=DIR)``. ``data.path`` is the folder; it is searched
recursively, and files or folders whose name starts with ``.`` are skipped.

Pixels: every image is decoded with PIL into uint8 values 0..255 (a model sees them divided
by 255, in [0, 1]). 16-bit grey images are scaled to 8 bits (divided by 257).

Channels: 1 (grey) when every image of the split is stored grey (PIL modes 1, L, LA, I, F,
I;16), else 3 (RGB): grey images are repeated to RGB, palette images expanded, and an alpha
channel is dropped.

Size: without ``data.image_size`` every image must have the same width and height (the
error names two files that differ and the setting to use). With ``data.image_size=N``
each image is centre-cropped to a square of its short side and resized to N x N (PIL
bilinear, antialiased when shrinking; small images are enlarged), so a folder of 25x25
faces trains at ``--set data.image_size=32`` and mixed sizes become one. The conv nets need
a side divisible by 4 (by 8 from 64 pixels up): 28, 32 and 64 all work.

Splits: when the folder has sub-folders named ``train``, ``test`` and/or ``valid`` (or
``val``, ``validation``), each split is read from its sub-folder. Otherwise the ``test``
split is the one file in ten picked by a hash (CRC-32) of its path relative to the folder,
``train`` is the other nine, and ``all`` is every file; the pick of a file does not change
when others are added or removed. The training run holds out its ``test`` split
(``data.test_split``).

Labels: when every image lies inside a first-level sub-folder (of the split's folder),
the sub-folder names are the classes, sorted, and a label is the class's position
(int64); otherwise the images are unlabelled. Files are read in the order of their
relative paths.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from waekit.data.source import CONFIG_HINTS, Alloc, Hints, OwnFileSource, Part, new_uint8
from waekit.data.transforms import (
    DECODE_ERRORS,
    crop_resize,
    default_workers,
    parallel_map,
    to_chw,
)
from waekit.errors import DataError

__all__ = ["EXTENSIONS", "SPLIT_DIRS", "FolderSource", "list_images", "read_folder", "split_files"]

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
GREY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")
SPLIT_DIRS = {"train": ("train",), "test": ("test",), "valid": ("valid", "val", "validation")}
TEST_ONE_IN = 10


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, sorted by relative path; hidden ones skipped."""
    found = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() in EXTENSIONS and p.is_file():
            found.append(rel)
    return [folder / rel for rel in sorted(found, key=lambda r: r.as_posix())]


def _in_test(rel: Path) -> bool:
    return zlib.crc32(rel.as_posix().encode("utf-8")) % TEST_ONE_IN == 0


def split_files(path: Path, split: str) -> tuple[Path, list[Path], str | None]:
    """(the folder the split's labels are relative to, its files, a note for the user)."""
    if not path.is_dir():
        raise DataError(f"image folder {path} does not exist or is not a folder")
    split_dirs = {
        s: path / d for s, names in SPLIT_DIRS.items() for d in names if (path / d).is_dir()
    }
    if split_dirs:
        if split not in split_dirs:
            present = ", ".join(sorted(p.name for p in split_dirs.values()))
            raise DataError(
                f"{path} has split sub-folders ({present}) but none for split {split!r}"
            )
        return split_dirs[split], list_images(split_dirs[split]), None
    if split not in ("train", "test", "all"):
        raise DataError(
            f"split {split!r} of image folder {path}: without split sub-folders the splits are "
            "'train', 'test' and 'all'"
        )
    files = list_images(path)
    if split == "all":
        return path, files, None
    want_test = split == "test"
    chosen = [f for f in files if _in_test(f.relative_to(path)) == want_test]
    note = (
        f"{path} has no train/test sub-folders: its test split is the 1 file in "
        f"{TEST_ONE_IN} picked by a hash of its path, train the rest"
    )
    return path, chosen, note


def _labels(base: Path, files: list[Path]) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    rels = [f.relative_to(base) for f in files]
    if not rels or any(len(r.parts) < 2 for r in rels):
        return None, None
    classes = tuple(sorted({r.parts[0] for r in rels}))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[r.parts[0]] for r in rels], dtype=np.int64), classes


def suggest_size(sizes: list[tuple[int, int]]) -> int:
    """A side every image can be cropped to and the conv nets take: a multiple of 8, >= 8."""
    return max(8, min(min(w, h) for w, h in sizes) // 8 * 8)


def read_folder(
    path: Path,
    split: str = "train",
    image_size: int | None = None,
    limit: int | None = None,
    workers: int = 1,
    alloc: Alloc | None = None,
    hints: Hints = CONFIG_HINTS,
) -> Part:
    """The images of ``split`` under ``path`` as (N, C, H, W) uint8 (see the module's doc)."""
    base, files, note = split_files(path, split)
    if not files:
        where = base if base == path else f"{base} (split {split!r})"
        raise DataError(
            f"no images in {where}: looked recursively for {', '.join(EXTENSIONS)} files"
            + (f"; {note}" if note and split != "all" else "")
        )
    labels, classes = _labels(base, files)  # from every file, so a limit keeps the indices
    if limit is not None:
        files = files[:limit]
        labels = None if labels is None else labels[:limit]

    modes, sizes = [], []
    for f in files:
        try:
            with Image.open(f) as img:
                modes.append(img.mode)
                sizes.append(img.size)
        except DECODE_ERRORS as exc:
            raise DataError(
                f"{f} cannot be read as an image ({exc}); remove or replace it"
            ) from exc
    channels = 1 if all(m in GREY_MODES for m in modes) else 3
    if image_size is None:
        distinct = sorted(set(sizes))
        if len(distinct) > 1:
            (aw, ah), (bw, bh) = distinct[0], distinct[-1]
            a, b = files[sizes.index((aw, ah))], files[sizes.index((bw, bh))]
            fix = hints.image_size.format(n=suggest_size(distinct))
            raise DataError(
                f"the images in {base} have {len(distinct)} different sizes (e.g. {a.name} is "
                f"{aw}x{ah}, {b.name} is {bw}x{bh}); to centre-crop and resize them all to one "
                f"square size, set it: {fix}"
            )
        width, height = distinct[0]
    else:
        width = height = image_size
    out = (alloc or new_uint8)((len(files), channels, height, width))

    def decode(item: tuple[int, Path]) -> None:
        i, f = item
        try:
            with Image.open(f) as img:
                out[i] = to_chw(crop_resize(img, image_size), channels)
        except DECODE_ERRORS as exc:
            raise DataError(
                f"{f} cannot be decoded as an image ({exc}); remove or replace it"
            ) from exc

    parallel_map(decode, list(enumerate(files)), workers)
    return Part(out, labels, [base], note, classes)


@dataclass(frozen=True)
class FolderSource(OwnFileSource):
    """The user's folder of images (``data.path``)."""

    noun = "image folder"

    def read(
        self,
        files: list[Path],
        split: str,
        size: int | None,
        limit: int | None,
        alloc: Alloc | None = None,
        hints: Hints = CONFIG_HINTS,
    ) -> Part:
        return read_folder(files[0], split, size, limit, default_workers(), alloc, hints)
