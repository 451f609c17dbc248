"""Images stored as a numpy ``.npz`` archive.

Keys: ``images``, shaped (N, H, W) (grey), (N, H, W, C) or (N, C, H, W) with C = 1 or 3,
as uint8 (0..255, any integer type whose values fit) or float in [0, 1] (scaled by 255 and
rounded); and optionally ``labels``, N integers. A 4-D array whose axis 1 and last axis both
have length 1 or 3 is read as (N, C, H, W). Arrays are loaded without pickle.

Splits: ``all`` is every image; ``test`` the images whose index i has i % 10 == 9 and
``train`` the others, so both keep the file's order.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from waekit.data.imageset import ImageSet
from waekit.data.transforms import resize_images
from waekit.errors import DataError

__all__ = ["read_npz", "to_uint8_nchw"]

TEST_ONE_IN = 10


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


def read_npz(
    path: Path, split: str = "all", image_size: int | None = None, limit: int | None = None
) -> ImageSet:
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist (data.path / --path)")
    if split not in ("train", "test", "all"):
        raise DataError(
            f"split {split!r} of {path}: the splits of an npz file are 'train', 'test', 'all'"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{path} holds a single array, not an .npz archive; save it with "
            "np.savez(path, images=..., labels=...)"
        )
    with archive:
        keys = list(archive.keys())
        if "images" not in keys:
            raise DataError(
                f"{path} has no 'images' array (keys: {', '.join(keys) or 'none'}); save it "
                "with np.savez(path, images=..., labels=...)"
            )
        try:
            raw = archive["images"]
            raw_labels = archive["labels"] if "labels" in keys else None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(
                f"{path}: an array cannot be read ({exc}); the file is damaged"
            ) from exc
    images = to_uint8_nchw(raw, str(path))
    labels = None
    if raw_labels is not None:
        if raw_labels.shape != (len(images),) or raw_labels.dtype.kind not in "iu":
            raise DataError(
                f"{path}: 'labels' must be {len(images):,} integers (one per image), got "
                f"{raw_labels.dtype} {raw_labels.shape}"
            )
        labels = raw_labels.astype(np.int64)
    if split != "all":
        keep = (np.arange(len(images)) % TEST_ONE_IN == TEST_ONE_IN - 1) == (split == "test")
        images = np.ascontiguousarray(images[keep])
        labels = None if labels is None else labels[keep]
    if len(images) == 0:
        raise DataError(f"{path}: no images in split {split!r} ({len(raw):,} images in the file)")
    if limit is not None:
        images, labels = images[:limit], None if labels is None else labels[:limit]
    return ImageSet(
        images=np.ascontiguousarray(resize_images(images, image_size)),
        labels=labels,
        name="npz",
        split=split,
        source=str(path),
    )
