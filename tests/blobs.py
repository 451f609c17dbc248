"""Small in-memory training data shared by the trainer's tests (and their torchrun workers)."""

from __future__ import annotations

import numpy as np

from waekit.data import ImageSet


def blobs(n: int = 96, seed: int = 0) -> ImageSet:
    """Smooth random blobs on 12x12, the same for a given seed in every process."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:12, 0:12]
    cy, cx = rng.uniform(3, 9, (2, n, 1, 1))
    img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)
    images = (img[:, None] * 255).astype(np.uint8)
    return ImageSet(images, rng.integers(0, 3, n).astype(np.int64), "blobs", "train", "generated")
