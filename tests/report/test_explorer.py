"""The latent explorer: its axes, its precomputed images, and the report section."""

import json
import re

import numpy as np
import pytest
import torch
from report_pages import decode_png

from waekit.report.explorer import (
    GRID_SIDE,
    MAX_AXES,
    POSITIONS,
    build_explorer,
    explorer_axes,
    explorer_html,
)
from waekit.report.grids import to_uint8
from waekit.run import load_run


def painter(channels=1, size=4):
    """A decoder that paints pixel (0, j) of every channel with 0.5 + 0.1 z_j (z_j for j <
    size), the rest 0.25: each decoded image shows its code."""

    def decode(z):
        out = torch.full((z.shape[0], channels, size, size), 0.25)
        k = min(size, z.shape[1])
        out[:, :, 0, :k] = (0.5 + 0.1 * z[:, None, :k]).clamp(0, 1)
        return out

    return decode


def test_axes_are_the_latent_dimensions_up_to_max_axes():
    codes = np.random.default_rng(0).normal(size=(50, 3))
    names, directions, offsets = explorer_axes(codes, prior_var=2.0)
    assert names == ["z1", "z2", "z3"]
    np.testing.assert_array_equal(directions, np.eye(3))
    expected = np.linspace(-3, 3, POSITIONS) * np.sqrt(2.0)
    for row in offsets:
        np.testing.assert_allclose(row, expected)
    assert offsets[0, POSITIONS // 2] == 0.0  # the middle position is the base point


def test_axes_are_the_top_principal_directions_above_max_axes():
    rng = np.random.default_rng(1)
    d = 12
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    sds = np.arange(d, 0, -1, dtype=np.float64)  # 12, 11, ..., 1: distinct variances
    codes = (rng.normal(size=(4000, d)) * sds) @ rotation.T + 5.0
    names, directions, offsets = explorer_axes(codes, prior_var=1.0)
    assert len(names) == MAX_AXES and names[0].startswith("PC1 (")
    # Independent recomputation: eigenvectors of the sample covariance, largest first.
    values, vectors = np.linalg.eigh(np.cov(codes, rowvar=False))
    order = np.argsort(values)[::-1][:MAX_AXES]
    for a, j in enumerate(order):
        assert abs(directions[a] @ vectors[:, j]) == pytest.approx(1.0, abs=1e-9)
        assert offsets[a, -1] == pytest.approx(3.0 * np.sqrt(values[j]), rel=1e-9)
    share = values[order[0]] / values.sum()
    assert names[0] == f"PC1 ({share:.0%} of variance)"
    # and the population directions, within sampling error
    assert abs(directions[0] @ rotation[:, 0]) > 0.99


def test_explorer_images_are_the_decoded_points():
    rng = np.random.default_rng(2)
    codes = rng.normal(size=(100, 3))
    bases = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])
    decode = painter()
    ex = build_explorer(decode, codes, bases, ["origin", "other"], prior_var=1.0)
    assert ex.images.shape == (2, 3, POSITIONS, 1, 4, 4)
    t = np.linspace(-3, 3, POSITIONS)
    for b in range(2):
        for a in range(3):
            for k in range(POSITIONS):
                z = bases[b].copy()
                z[a] += t[k]
                expected = to_uint8(decode(torch.tensor(z[None], dtype=torch.float32)))[0]
                np.testing.assert_array_equal(ex.images[b, a, k], expected)
    # Slider 1 of base 1 at its first position: coordinate 2 is 1 - 3 - the pixel shows it.
    assert ex.images[1, 1, 0, 0, 0, 1] == round(255 * (0.5 + 0.1 * (-1.0 - 3.0)))
    # The 2-D grid: column j moves z1 from -3 to 3, row i moves z2 from +3 to -3.
    grid = ex.grid[:, :, 0]
    assert grid.shape == (GRID_SIDE * 5 + 1, GRID_SIDE * 5 + 1)
    tg = np.linspace(-3, 3, GRID_SIDE)
    for i in (0, 4, 8):
        for j in (0, 3, 8):
            top, left = 1 + i * 5, 1 + j * 5
            assert grid[top, left] == round(255 * min(1, max(0, 0.5 + 0.1 * tg[j])))
            assert grid[top, left + 1] == round(255 * min(1, max(0, 0.5 - 0.1 * tg[i])))


def test_explorer_keeps_the_page_small_for_large_images():
    codes = np.random.default_rng(3).normal(size=(40, 4))
    bases = np.zeros((3, 4))
    ex = build_explorer(painter(3, 64), codes, bases, ["a", "b", "c"], prior_var=1.0)
    assert ex.images.shape[0] == 1 and ex.base_names == ["a"]
    small = build_explorer(painter(1, 28), codes, bases, ["a", "b", "c"], prior_var=1.0)
    assert small.images.shape[0] == 3


def test_explorer_html_inlines_every_image():
    codes = np.random.default_rng(4).normal(size=(60, 2))
    ex = build_explorer(painter(), codes, np.zeros((1, 2)), ["origin"], prior_var=1.0)
    text = explorer_html(ex, "60 codes")
    data = json.loads(re.search(r'id="explorer-data">(.*?)</script>', text)[1])
    assert len(data["images"][0]) == 2 and len(data["images"][0][0]) == POSITIONS
    for a in range(2):
        for k in range(POSITIONS):
            png = np.asarray(decode_png(data["images"][0][a][k]))
            np.testing.assert_array_equal(png, ex.images[0, a, k, 0])
    assert data["offsets"][0] == [f"{t:+.2f}" for t in np.linspace(-3, 3, POSITIONS)]
    assert text.count('type="range"') == 2 and "src=" not in text.split("<script>")[1]


def report_explorer(run_dir):
    """The explorer's inlined data of RUN/report.html."""
    page = (run_dir / "report.html").read_text()
    return json.loads(re.search(r'id="explorer-data">(.*?)</script>', page)[1])


@pytest.mark.usefixtures("use_npz_loader")
def test_report_explorer_shows_the_models_decoded_codes(evaluated_run):
    run_dir, _ = evaluated_run
    data = report_explorer(run_dir)
    model = load_run(run_dir, device="cpu").model.eval()
    d, var = model.config.latent_dim, model.config.prior_var
    assert d == 2 and len(data["images"]) == 3 and len(data["images"][0]) == d
    t = np.linspace(-3, 3, POSITIONS) * np.sqrt(var)
    for a in range(d):
        for k in (0, 3, POSITIONS - 1):
            z = np.zeros((1, d))
            z[0, a] = t[k]
            with torch.inference_mode():
                expected = to_uint8(model.decode(torch.tensor(z, dtype=torch.float32)))[0, 0]
            shown = np.asarray(decode_png(data["images"][0][a][k]))
            np.testing.assert_array_equal(shown, expected)
