"""Your own images as a numpy ``.npz`` archive (``data.name=npz``).

Use: ``waekit train --preset PRESET --set data.name=npz --set data.path=FILE.npz``, in
Python ``load_dataset("npz", "train", path=FILE)``. Write the file with
``np.savez(FILE, images=images, labels=labels)`` (``np.savez_compressed`` works too).

Keys: ``images`` (required) and ``labels`` (optional); other keys are ignored. Arrays are
read without pickle, so object arrays are refused.

``images``: shaped (N, H, W) (grey), (N, H, W, C) or (N, C, H, W) with C = 1 (grey) or
3 (RGB); a 4-D array whose axis 1 and last axis both have length 1 or 3 is read as
(N, C, H, W). Values: uint8 0..255; any other integer type whose values lie in 0..255;
bool (False 0, True 255); or float in [0, 1], scaled by 255 and rounded (floats outside
[0, 1], NaN or inf are refused: divide 0..255 floats by 255 first). A model sees the
pixels divided by 255, in [0, 1].

``labels``: N integers (any integer dtype, stored as int64), one per image.

Size: images keep their size unless ``data.image_size=N`` is set, which centre-crops each
to a square and resizes it to N x N (PIL bilinear; small images are enlarged), so an 8x8
archive trains at ``--set data.image_size=32``. The conv nets need a side divisible by 4
(by 8 from 64 pixels up).

Splits: ``all`` is every image; ``test`` the images whose index i has i % 10 == 9 and
``train`` the others (90%), both in the file's order.

Limits: an array whose header declares more bytes than its zip member holds is refused
before anything is allocated, as is one larger than :data:`MAX_BYTES`, or a compressed
member that would inflate past :data:`MAX_RATIO` times its stored size beyond
:data:`RATIO_FLOOR` bytes (a zip bomb; save real data that large with ``np.savez``).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from waekit.data.source import CONFIG_HINTS, Alloc, Hints, OwnFileSource, Part, deliver
from waekit.data.transforms import resize_images
from waekit.errors import DataError, brief

__all__ = ["MAX_BYTES", "NpzSource", "read_npz", "to_uint8_nchw"]

TEST_ONE_IN = 10
#: The most bytes one array may declare (64 GiB: far past any image set that fits in memory).
MAX_BYTES = 64 << 30
#: A compressed member may inflate at most this many times its stored size ...
MAX_RATIO = 200
#: ... once it is larger than this (small, blank arrays compress far better).
RATIO_FLOOR = 256 << 20
_SAVE = "save it with np.savez(path, images=..., labels=...)"


def to_uint8_nchw(images: np.ndarray, source: str) -> np.ndarray:
    """Any accepted layout and dtype -> C-contiguous uint8 (N, C, H, W)."""
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4:
        first, last = images.shape[1] in (1, 3), images.shape[3] in (1, 3)
        if last and not first:
            images = images.transpose(0, 3, 1, 2)
        elif not first:
            raise DataError(
                f"{source}: images of shape {images.shape} have no channel axis of length 1 or 3; "
                "expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3"
            )
    else:
        raise DataError(
            f"{source}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W), got shape "
            f"{images.shape}"
        )
    if images.dtype == np.uint8:
        return np.ascontiguousarray(images)
    if images.dtype == np.bool_:
        return np.ascontiguousarray(images.astype(np.uint8) * 255)
    if images.dtype.kind in "iu":
        lo, hi = (int(images.min()), int(images.max())) if images.size else (0, 0)
        if lo < 0 or hi > 255:
            raise DataError(
                f"{source}: integer images must lie in 0..255, found {lo}..{hi}; rescale them"
            )
        return np.ascontiguousarray(images.astype(np.uint8))
    if images.dtype.kind == "f":
        if images.size and not np.isfinite(images).all():
            raise DataError(f"{source}: the float images contain NaN or infinite values")
        lo, hi = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise DataError(
                f"{source}: float images must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]; "
                "divide by 255 (or save uint8)"
            )
        return np.ascontiguousarray(np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8))
    raise DataError(
        f"{source}: images of dtype {images.dtype} are not supported; use uint8 or float"
    )


def _header(stream: IO[bytes], source: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    except (ValueError, OSError, EOFError, SyntaxError, zipfile.BadZipFile) as exc:
        raise DataError(f"{source}: an array cannot be read ({brief(str(exc), 120)})") from exc
    return tuple(int(d) for d in shape), dtype


def _array(archive: zipfile.ZipFile, member: zipfile.ZipInfo, source: str) -> np.ndarray:
    """One array, its declared size checked against the member before it is allocated."""
    with archive.open(member) as stream:
        shape, dtype = _header(stream, source)
    if dtype.hasobject:
        raise DataError(
            f"{source}: an array cannot be read (it holds Python objects, which would need "
            f"pickle; pickle is not allowed): {_SAVE} with numeric arrays"
        )
    declared = math.prod(shape) * dtype.itemsize
    what = f"{source}: the array {member.filename} declares shape {brief(shape)} of {dtype}"
    if declared > min(MAX_BYTES, member.file_size):
        holds = f"its file holds {member.file_size:,} bytes"
        raise DataError(
            f"{what} = {declared:,} bytes, but {holds} and at most {MAX_BYTES:,} are read; "
            f"the file is damaged or crafted: {_SAVE}"
        )
    stored = max(1, member.compress_size)
    if member.file_size > RATIO_FLOOR and member.file_size > MAX_RATIO * stored:
        raise DataError(
            f"{what} = {declared:,} bytes compressed into {member.compress_size:,} (more than "
            f"{MAX_RATIO}x): refused as a zip bomb; if the data are genuine, save them "
            "uncompressed with np.savez"
        )
    try:
        with archive.open(member) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{source}: an array cannot be read ({brief(str(exc), 120)}); the file is damaged"
        ) from exc


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels or None) from the archive, read without pickle and bounded."""
    try:
        with path.open("rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc}") from exc
    if magic == b"\x93NUMPY":
        raise DataError(f"{path} holds a single array, not an .npz archive; {_SAVE}")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({brief(str(exc), 120)})") from exc
    with archive:
        members = {
            m.filename[: -len(".npy")]: m for m in archive.infolist() if m.filename.endswith(".npy")
        }
        if "images" not in members:
            keys = ", ".join(brief(k, 40) for k in list(members)[:8]) or "none"
            raise DataError(f"{path} has no 'images' array (keys: {keys}); {_SAVE}")
        images = _array(archive, members["images"], str(path))
        labels = _array(archive, members["labels"], str(path)) if "labels" in members else None
    return images, labels


def read_npz(
    path: Path,
    split: str = "all",
    image_size: int | None = None,
    limit: int | None = None,
    alloc: Alloc | None = None,
) -> Part:
    """The images of ``split`` in ``path`` as (N, C, H, W) uint8 (see the module's doc)."""
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist or is not a file")
    if split not in ("train", "test", "all"):
        raise DataError(
            f"split {split!r} of {path}: the splits of an npz file are 'train', 'test', 'all'"
        )
    raw, raw_labels = _read_arrays(path)
    images = to_uint8_nchw(raw, str(path))
    labels = None
    if raw_labels is not None:
        if raw_labels.shape != (len(images),) or raw_labels.dtype.kind not in "iu":
            raise DataError(
                f"{path}: 'labels' must be {len(images):,} integers (one per image), got "
                f"{raw_labels.dtype} {brief(raw_labels.shape)}"
            )
        labels = raw_labels.astype(np.int64)
    if split != "all":
        keep = (np.arange(len(images)) % TEST_ONE_IN == TEST_ONE_IN - 1) == (split == "test")
        images = images[keep]
        labels = None if labels is None else labels[keep]
    if len(images) == 0:
        raise DataError(f"{path}: no images in split {split!r} ({len(raw):,} images in the file)")
    images, labels = images[:limit], None if labels is None else labels[:limit]
    return Part(deliver(resize_images(images, image_size), alloc), labels, [path])


@dataclass(frozen=True)
class NpzSource(OwnFileSource):
    """The user's ``.npz`` file (``data.path``)."""

    noun = "npz file"

    def read(
        self,
        files: list[Path],
        split: str,
        size: int | None,
        limit: int | None,
        alloc: Alloc | None = None,
        hints: Hints = CONFIG_HINTS,
    ) -> Part:
        return read_npz(files[0], split, size, limit, alloc)
