"""The report's latent explorer: a slider per latent axis, each moving a code along one
direction and showing its decoded image, and a 2-D grid of decoded points.

Everything is decoded while the report is written and inlined as PNG data URIs with a few
lines of JavaScript that swap them, so the page needs no server. Axes are the latent
dimensions themselves when d <= :data:`MAX_AXES`, else the top principal directions of the
test codes. Along axis a the sliders take :data:`POSITIONS` offsets t_k, evenly spaced in
[-3 s_a, 3 s_a] (s_a: the prior's standard deviation sqrt(prior_var) for a latent dimension;
the codes' standard deviation along a principal direction), and slider a of base point b
shows decode(base_b + t_k u_a), u_a the axis' unit vector. The middle position (t = 0) is
the base point itself.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from waekit.report.grids import image_grid, png_bytes, to_uint8

__all__ = ["MAX_AXES", "POSITIONS", "Explorer", "explorer_axes", "build_explorer", "explorer_html"]

#: A slider per latent dimension up to this d; above it, this many principal directions.
MAX_AXES = 8
#: Slider positions per axis (odd, so that the middle one is the base point).
POSITIONS = 11
#: Decoded pixel values the explorer may hold, which bounds the page's size: three base
#: points for 28x28 grey images, one for 64x64 colour ones.
PIXEL_BUDGET = 3 * MAX_AXES * POSITIONS * 28 * 28
#: Points per side of the 2-D grid over the first two axes.
GRID_SIDE = 9


@dataclass
class Explorer:
    """Decoded images along each axis from each base point."""

    axis_names: list[str]
    directions: np.ndarray  # (A, d) unit vectors u_a
    offsets: np.ndarray  # (A, K) offsets t_k along each axis
    base_names: list[str]
    bases: np.ndarray  # (B, d) base points
    images: np.ndarray  # (B, A, K, C, H, W) uint8: decode(base_b + t_k u_a)
    grid: np.ndarray | None  # (H', W', C) uint8 grid over axes 1 and 2 around base 0


def explorer_axes(
    codes: np.ndarray, prior_var: float, max_axes: int = MAX_AXES, positions: int = POSITIONS
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, directions (A, d), offsets (A, K)) of the explorer's axes for codes (n, d)."""
    z = np.asarray(codes, dtype=np.float64)
    d = z.shape[1]
    steps = np.linspace(-3.0, 3.0, positions)
    if d <= max_axes:
        scale = np.full(d, np.sqrt(prior_var))
        return [f"z{j + 1}" for j in range(d)], np.eye(d), scale[:, None] * steps[None, :]
    # Principal directions: eigenvectors of the codes' covariance, largest variance first;
    # each sign is fixed so that its largest component is positive (a deterministic page).
    centred = z - z.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    vt = vt[:max_axes]
    flip = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    vt = vt * flip[:, None]
    var = sv[:max_axes] ** 2 / max(len(z) - 1, 1)
    share = var / max(float((sv**2).sum() / max(len(z) - 1, 1)), 1e-300)
    names = [f"PC{j + 1} ({share[j]:.0%} of variance)" for j in range(len(vt))]
    return names, vt, np.sqrt(var)[:, None] * steps[None, :]


def build_explorer(
    decode: Callable[[torch.Tensor], torch.Tensor],
    codes: np.ndarray,
    bases: np.ndarray,
    base_names: list[str],
    prior_var: float,
    device: torch.device | str = "cpu",
    max_axes: int = MAX_AXES,
    positions: int = POSITIONS,
) -> Explorer:
    """Decode every slider position of every axis from each base point (as many bases as
    :data:`PIXEL_BUDGET` allows, at least one). ``decode`` maps codes (n, d) to images
    (n, C, H, W) in [0, 1]; ``codes`` (n, d) choose the axes (:func:`explorer_axes`)."""
    names, directions, offsets = explorer_axes(codes, prior_var, max_axes, positions)
    bases = np.asarray(bases, dtype=np.float64)
    a, k = offsets.shape
    # (B, A, K, d): base_b + t_k u_a, computed in float64 and decoded in float32
    points = bases[:, None, None, :] + offsets[None, :, :, None] * directions[None, :, None, :]
    with torch.inference_mode():
        first = to_uint8(decode(torch.from_numpy(points[0].reshape(a * k, -1)).float().to(device)))
        keep = max(1, min(len(bases), PIXEL_BUDGET // max(1, first[0].size * a * k)))
        decoded = [first] + [
            to_uint8(decode(torch.from_numpy(p.reshape(a * k, -1)).float().to(device)))
            for p in points[1:keep]
        ]
        grid = None
        if a >= 2:
            t = np.linspace(-3.0, 3.0, GRID_SIDE)
            s = offsets[:2, -1] / 3.0  # each axis' scale s_a
            # row i: axis 2 at +3 s (top) .. -3 s (bottom); column j: axis 1 from -3 s to +3 s
            plane = (
                bases[0][None, None, :]
                + (t[None, :, None] * s[0]) * directions[0][None, None, :]
                + (t[::-1][:, None, None] * s[1]) * directions[1][None, None, :]
            )
            tiles = decode(torch.from_numpy(plane.reshape(GRID_SIDE**2, -1)).float().to(device))
            grid = image_grid(tiles, nrow=GRID_SIDE, pad=1)
    images = np.stack([x.reshape(a, k, *x.shape[1:]) for x in decoded])
    return Explorer(names, directions, offsets, list(base_names[:keep]), bases[:keep], images, grid)


_SCRIPT = """
(() => {
  const root = document.getElementById("explorer");
  const data = JSON.parse(document.getElementById("explorer-data").textContent);
  const base = root.querySelector("select");
  const show = () => {
    for (const slider of root.querySelectorAll("input[type=range]")) {
      const axis = Number(slider.dataset.axis), k = Number(slider.value);
      const card = slider.closest(".axis");
      card.querySelector("img").src = data.images[Number(base.value)][axis][k];
      card.querySelector("output").textContent = data.offsets[axis][k];
    }
  };
  root.addEventListener("input", show);
  root.addEventListener("change", show);
})();
"""

_CSS = """
#explorer .axes { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 10px; }
#explorer .axis { border: 1px solid var(--line); border-radius: 6px; padding: 8px;
                  width: 150px; text-align: center; font-size: 13px; }
#explorer .axis img { image-rendering: pixelated; width: 112px; height: auto; display: block;
                      margin: 6px auto; border: 1px solid var(--line); }
#explorer .axis input { width: 100%; }
#explorer .axis .name { font-weight: 600; overflow-wrap: anywhere; }
"""


def _offset_text(t: float) -> str:
    return f"{t:+.2f}"


def explorer_html(ex: Explorer, caption_codes: str) -> str:
    """The explorer section: base selector, one card per axis (name, image, slider, offset),
    the 2-D grid, and the inlined data and script."""
    from waekit.report.html import data_uri

    mid = ex.offsets.shape[1] // 2
    uris = [
        [[data_uri(png_bytes(_hwc(img))) for img in axis] for axis in base] for base in ex.images
    ]
    data = {"offsets": [[_offset_text(t) for t in row] for row in ex.offsets], "images": uris}
    options = "".join(
        f'<option value="{b}">{html.escape(name)}</option>' for b, name in enumerate(ex.base_names)
    )
    cards = "".join(
        f'<div class="axis"><div class="name">{html.escape(name)}</div>'
        f'<img src="{uris[0][a][mid]}" alt="decoded point on {html.escape(name)}">'
        f'<input type="range" min="0" max="{ex.offsets.shape[1] - 1}" step="1" value="{mid}" '
        f'data-axis="{a}" aria-label="offset along {html.escape(name)}">'
        f"<output>{_offset_text(ex.offsets[a, mid])}</output></div>"
        for a, name in enumerate(ex.axis_names)
    )
    what = (
        "each latent dimension"
        if ex.axis_names[0] == "z1"
        else f"each of the top {len(ex.axis_names)} principal directions of the {caption_codes}"
    )
    text = (
        f"Move a slider to walk from the base point along {what}; its image is the decoder's "
        "output at that code. The offsets run from -3 to +3 standard deviations ("
        + ("of the prior" if ex.axis_names[0] == "z1" else "of the codes along that direction")
        + "); the middle position is the base point. Every image was decoded when this "
        "report was written."
    )
    grid = ""
    if ex.grid is not None:
        zoom = max(1, min(4, 540 // ex.grid.shape[1]))
        grid = (
            f'<figure><img width="{ex.grid.shape[1] * zoom}" src="{data_uri(png_bytes(ex.grid))}" '
            'alt="decoded grid"><figcaption>'
            f"Decoded {GRID_SIDE} x {GRID_SIDE} grid around the first base point: "
            f"{html.escape(ex.axis_names[0])} from -3 to +3 standard deviations left to right, "
            f"{html.escape(ex.axis_names[1])} from +3 to -3 top to bottom</figcaption></figure>"
        )
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (
        f"<style>{_CSS}</style>"
        f'<div id="explorer"><p class="muted">{html.escape(text)}</p>'
        f'<label>Base point <select id="explorer-base">{options}</select></label>'
        f'<div class="axes">{cards}</div></div>{grid}'
        f'<script type="application/json" id="explorer-data">{payload}</script>'
        f"<script>{_SCRIPT}</script>"
    )


def _hwc(image: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 -> (H, W, C) for PNG encoding."""
    return np.ascontiguousarray(image.transpose(1, 2, 0))
