"""Image grids: batches of images tiled into one picture, and atomic PNG writing.

Images come in as (N, C, H, W), either floats in [0, 1] or uint8 in [0, 255]; grids come
out as uint8 arrays (H', W', C) ready for PIL. Tiles are separated (and framed) by a
``pad``-pixel border of value ``pad_value``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from waekit.generate import interpolation_codes, to_uint8

__all__ = [
    "to_uint8",
    "image_grid",
    "reconstruction_grid",
    "interpolation_grid",
    "png_bytes",
    "save_png",
]


def image_grid(
    images: np.ndarray | torch.Tensor, nrow: int = 8, pad: int = 2, pad_value: int = 255
) -> np.ndarray:
    """Tile N images into rows of ``nrow`` (row-major); returns uint8 (H', W', C).

    With R = ceil(N / nrow) rows: H' = R * (H + pad) + pad and W' = nrow * (W + pad) + pad.
    Image k sits at top-left (pad + (k // nrow) * (H + pad), pad + (k % nrow) * (W + pad)).
    Missing tiles in the last row stay ``pad_value``.
    """
    x = to_uint8(images)
    n, c, h, w = x.shape
    if n == 0:
        raise ValueError("image_grid got no images")
    if nrow < 1:
        raise ValueError(f"nrow={nrow} is invalid: must be >= 1")
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    grid = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for k in range(n):
        top = pad + (k // ncol) * (h + pad)
        left = pad + (k % ncol) * (w + pad)
        grid[top : top + h, left : left + w] = x[k].transpose(1, 2, 0)
    return grid


def reconstruction_grid(
    real: np.ndarray | torch.Tensor,
    recon: np.ndarray | torch.Tensor,
    nrow: int = 8,
    pad: int = 2,
) -> np.ndarray:
    """The WAE paper's reconstruction figure: odd rows (1st, 3rd, ...) hold real images,
    the even row under each holds their reconstructions, in the same columns."""
    real_u8, recon_u8 = to_uint8(real), to_uint8(recon)
    if real_u8.shape != recon_u8.shape:
        raise ValueError(
            f"real and recon must have the same shape, got {real_u8.shape} and {recon_u8.shape}"
        )
    n = real_u8.shape[0]
    ncol = min(nrow, n)
    pairs = []
    for start in range(0, n, ncol):
        block_real = real_u8[start : start + ncol]
        block_recon = recon_u8[start : start + ncol]
        short = ncol - block_real.shape[0]
        if short:  # a ragged last pair of rows: fill with white so the columns still line up
            blank = np.full((short, *real_u8.shape[1:]), 255, dtype=np.uint8)
            block_real = np.concatenate([block_real, blank])
            block_recon = np.concatenate([block_recon, blank])
        pairs += [block_real, block_recon]
    return image_grid(np.concatenate(pairs), nrow=ncol, pad=pad)


def interpolation_grid(
    decode,
    z_start: torch.Tensor,
    z_end: torch.Tensor,
    steps: int = 10,
    pad: int = 2,
    start_images: np.ndarray | torch.Tensor | None = None,
    end_images: np.ndarray | torch.Tensor | None = None,
) -> np.ndarray:
    """One row per pair of codes: decode((1 - t) z_start + t z_end) for t = 0 .. 1 in
    ``steps`` equal steps. ``decode`` maps codes (n, d) to images (n, C, H, W) in [0, 1];
    z_start and z_end are (P, d). Row p is the path from z_start[p] to z_end[p], framed by
    ``start_images[p]`` on the left and ``end_images[p]`` on the right when given (the WAE
    paper's figure: the real images whose codes are interpolated)."""
    p = z_start.shape[0]
    # (P, steps, d) -> (P * steps, d), row-major so that each row of the grid is one path
    path = interpolation_codes(z_start, z_end, steps)
    rows = to_uint8(decode(path.reshape(-1, z_start.shape[1])))
    rows = rows.reshape(p, steps, *rows.shape[1:])
    columns = [rows]
    if start_images is not None:
        columns.insert(0, to_uint8(start_images)[:, None])
    if end_images is not None:
        columns.append(to_uint8(end_images)[:, None])
    framed = np.concatenate(columns, axis=1)  # (P, steps + frames, C, H, W)
    return image_grid(framed.reshape(-1, *framed.shape[2:]), nrow=framed.shape[1], pad=pad)


def png_bytes(array: np.ndarray) -> bytes:
    """PNG encoding of a uint8 image (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)."""
    from PIL import Image

    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise ValueError(f"png_bytes needs a uint8 array, got {a.dtype}; use image_grid first")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"png_bytes needs (H, W) or (H, W, 1|3|4), got shape {a.shape}")
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 image array as a PNG file, atomically (see :func:`png_bytes`)."""
    from waekit.io import atomic_write_bytes

    return atomic_write_bytes(path, png_bytes(array))
