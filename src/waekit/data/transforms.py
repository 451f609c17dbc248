"""Centre crop and resize with PIL, shared by every reader that changes an image's size.

Resizing uses PIL's bilinear filter, which widens its support when shrinking (it
antialiases), as the WAE paper's CelebA preprocessing did: a 140x140 centre crop of the
178x218 aligned faces, resized to 64x64.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from PIL import Image

__all__ = [
    "DECODE_ERRORS",
    "crop_box",
    "crop_resize",
    "default_workers",
    "parallel_map",
    "resize_images",
    "to_chw",
]

RESAMPLE = Image.Resampling.BILINEAR
#: What PIL raises on a damaged or hostile file (some plugins raise SyntaxError on bad chunks).
DECODE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    SyntaxError,
    zlib.error,
    Image.DecompressionBombError,
)
T = TypeVar("T")


def crop_box(width: int, height: int, crop: int | None = None) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred square of side ``crop`` (default: the short side).

    The side is clamped to the image; odd margins put the extra pixel on the right/bottom,
    e.g. 140 of 178x218 is columns 19..158 and rows 39..178.
    """
    side = min(width, height) if crop is None else min(crop, width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    return left, top, left + side, top + side


def crop_resize(image: Image.Image, size: int | None, crop: int | None = None) -> Image.Image:
    """Centre-crop to a square (side ``crop``, default the short side), then resize to ``size``.

    ``size=None`` with ``crop=None`` returns the image unchanged (no crop to square).
    """
    if size is None and crop is None:
        return image
    box = crop_box(image.width, image.height, crop)
    if box != (0, 0, image.width, image.height):
        image = image.crop(box)
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), RESAMPLE)
    return image


def to_chw(image: Image.Image, channels: int) -> np.ndarray:
    """A PIL image as uint8 (C, H, W) with C = 1 (grey) or 3 (RGB); alpha is dropped.

    16-bit grey images (modes I;16 and I) are scaled to 8 bits (divided by 257).
    """
    if image.mode == "I" or image.mode.startswith("I;16"):
        wide = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
        return grey[None] if channels == 1 else np.repeat(grey[None], 3, axis=0)
    if channels == 1:
        return np.asarray(image.convert("L"), dtype=np.uint8)[None]
    return np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)


def resize_images(images: np.ndarray, size: int | None) -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, C, size, size): centre crop to square, then resize.

    Returns ``images`` itself when it already has that size (or ``size`` is None).
    """
    n, c, h, w = images.shape
    if size is None or (h == size and w == size):
        return images
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        # (H, W) uint8 is read as mode L, (H, W, 3) as RGB
        pixels = images[i, 0] if c == 1 else images[i].transpose(1, 2, 0)
        out[i] = to_chw(crop_resize(Image.fromarray(np.ascontiguousarray(pixels)), size), c)
    return out


def parallel_map(fn: Callable[[T], None], items: Sequence[T] | Iterable[T], workers: int) -> None:
    """Run ``fn`` on every item with a thread pool (PIL decodes and resizes outside the GIL).

    The first exception raised by ``fn`` is re-raised here.
    """
    if workers <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(fn, items):
            pass


def default_workers() -> int:
    """Decoding threads: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))
