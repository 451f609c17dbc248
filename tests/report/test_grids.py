import numpy as np
import pytest
import torch
from PIL import Image

from waekit.report.grids import (
    image_grid,
    interpolation_grid,
    png_bytes,
    reconstruction_grid,
    save_png,
    to_uint8,
)


def _distinct(n, c=1, h=3, w=4):
    """n images whose pixels are all equal to their index + 1 (uint8)."""
    return np.stack([np.full((c, h, w), k + 1, dtype=np.uint8) for k in range(n)])


def test_image_grid_places_every_pixel():
    images = np.arange(5 * 2 * 3 * 4, dtype=np.uint8).reshape(5, 2, 3, 4)
    grid = image_grid(images, nrow=3, pad=2, pad_value=255)
    # 2 rows of 3 tiles: H' = 2 * (3 + 2) + 2, W' = 3 * (4 + 2) + 2
    assert grid.shape == (12, 20, 2)
    assert grid.dtype == np.uint8
    for k in range(5):
        top, left = 2 + (k // 3) * 5, 2 + (k % 3) * 6
        tile = grid[top : top + 3, left : left + 4]
        np.testing.assert_array_equal(tile, images[k].transpose(1, 2, 0))
    # The padding and the empty sixth tile are pad_value.
    mask = np.ones(grid.shape[:2], dtype=bool)
    for k in range(5):
        top, left = 2 + (k // 3) * 5, 2 + (k % 3) * 6
        mask[top : top + 3, left : left + 4] = False
    assert (grid[mask] == 255).all()
    assert mask.sum() == 12 * 20 - 5 * 12


def test_image_grid_float_input_is_scaled_and_clipped():
    x = torch.tensor([0.0, 0.5, 1.0, 1.7, -0.2]).reshape(1, 1, 1, 5)
    grid = image_grid(x, nrow=1, pad=0)
    assert grid[0, :, 0].tolist() == [0, 128, 255, 255, 0]


def test_image_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="N, C, H, W"):
        image_grid(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="no images"):
        image_grid(np.zeros((0, 1, 4, 4)))


def test_reconstruction_grid_row_order():
    real = _distinct(6)  # values 1..6
    recon = _distinct(6) + 100  # values 101..106
    grid = reconstruction_grid(real, recon, nrow=4, pad=2)
    # Rows: real[0:4], recon[0:4], real[4:6] + blanks, recon[4:6] + blanks.
    assert grid.shape == (4 * 5 + 2, 4 * 6 + 2, 1)

    def tile(r, c):
        return grid[2 + r * 5, 2 + c * 6, 0]

    assert [tile(0, c) for c in range(4)] == [1, 2, 3, 4]
    assert [tile(1, c) for c in range(4)] == [101, 102, 103, 104]
    assert [tile(2, c) for c in range(4)] == [5, 6, 255, 255]
    assert [tile(3, c) for c in range(4)] == [105, 106, 255, 255]


def test_interpolation_grid_endpoints_and_midpoint():
    # A "decoder" that paints each image with its code's first coordinate.
    def decode(z):
        return z[:, :1, None, None].expand(-1, 1, 2, 2).clamp(0, 1)

    z0 = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    z1 = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    grid = interpolation_grid(decode, z0, z1, steps=3, pad=1)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 1, 1)
    row0 = [grid[1, 1 + 3 * c, 0] for c in range(3)]
    row1 = [grid[4, 1 + 3 * c, 0] for c in range(3)]
    assert row0 == [0, 128, 255]
    assert row1 == [255, 128, 0]
    # Framed by the real images: one more column on each side.
    real_a = np.full((2, 1, 2, 2), 7, dtype=np.uint8)
    real_b = np.full((2, 1, 2, 2), 9, dtype=np.uint8)
    grid = interpolation_grid(
        decode, z0, z1, steps=3, pad=1, start_images=real_a, end_images=real_b
    )
    assert grid.shape == (2 * 3 + 1, 5 * 3 + 1, 1)
    assert [grid[4, 1 + 3 * c, 0] for c in range(5)] == [7, 255, 128, 0, 9]


def test_save_png_round_trip(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (4, 3, 5, 5), dtype=np.uint8)
    rgb = image_grid(pixels, nrow=2)
    path = save_png(rgb, tmp_path / "sub" / "g.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), rgb)
    grey = image_grid(_distinct(2), nrow=2)
    back = np.asarray(Image.open(save_png(grey, tmp_path / "grey.png")))
    np.testing.assert_array_equal(back, grey[:, :, 0])
    assert not list(tmp_path.glob("**/*.tmp"))


def test_png_bytes_rejects_floats():
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((4, 4), dtype=np.float32))
    assert to_uint8(np.zeros((1, 1, 2, 2), dtype=np.uint8)).dtype == np.uint8
