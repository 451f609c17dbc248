"""Figures for reports, as PNG bytes: training curves, code views, box plots, marginals.

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas directly, never
through pyplot: no global backend switch, no open-figure registry, safe in threads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "training_curves",
    "code_scatter",
    "latent_boxplots",
    "marginal_histograms",
    "MAX_PANELS",
]

#: Latent dimensions shown at most in per-dimension figures (the first ones).
MAX_PANELS = 16
_SKIP_KEYS = {"kind", "step", "epoch", "time", "elapsed", "seconds", "wall", "images_per_s"}


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _grid(n: int, ncols: int, panel: tuple[float, float], title: str | None = None):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(
        figsize=(panel[0] * ncols, panel[1] * nrows + (0.4 if title else 0)), layout="constrained"
    )
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig, axes[:n]


def _series(
    records: Sequence[dict[str, Any]], kind: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{key: (steps, values)} of the numeric keys of records of one kind."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for r in records:
        if r.get("kind", "train") != kind or "step" not in r:
            continue
        for key, value in r.items():
            if key in _SKIP_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            steps, values = out.setdefault(key, ([], []))
            steps.append(float(r["step"]))
            values.append(float(value))
    return {k: (np.asarray(s), np.asarray(v)) for k, (s, v) in out.items()}


def training_curves(records: Sequence[dict[str, Any]]) -> bytes | None:
    """One panel per logged term of metrics.jsonl against the step (log y when all values
    are positive); held-out terms ("holdout_loss") are drawn on the panel of their training
    term ("loss") when there is one. None when there is nothing to plot."""
    train, evals = _series(records, "train"), _series(records, "eval")
    panels: dict[str, list[tuple[str, tuple[np.ndarray, np.ndarray]]]] = {}
    for key, series in train.items():
        panels.setdefault(key, []).append((f"train {key}", series))
    for key, series in evals.items():
        base = key.removeprefix("holdout_").removeprefix("eval_")
        target = base if base in panels else key
        panels.setdefault(target, []).append((f"held out {base}", series))
    if not panels:
        return None
    order = sorted(panels, key=lambda k: (k != "loss", k == "lr", k))
    fig, axes = _grid(len(order), 3, (4.2, 2.8))
    for ax, key in zip(axes, order, strict=True):
        positive = True
        for label, (steps, values) in panels[key]:
            finite = np.isfinite(values)
            positive &= bool((values[finite] > 0).all())
            style = {"marker": "o", "markersize": 3} if len(steps) < 30 else {}
            ax.plot(steps[finite], values[finite], label=label, linewidth=1.2, **style)
        if positive:
            ax.set_yscale("log")
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(panels[key]) > 1:
            ax.legend(fontsize=8)
    return _png(fig)


def _label_colours(labels: np.ndarray | None, n: int):
    if labels is None:
        return [("codes", np.ones(n, dtype=bool), "C0")]
    classes = np.unique(labels)
    return [(str(c), labels == c, f"C{i % 10}") for i, c in enumerate(classes)]


def code_scatter(codes: np.ndarray, labels: np.ndarray | None = None, seed: int = 0) -> bytes:
    """Codes (n, d) in two dimensions, coloured by label: the codes themselves when d = 2,
    their first two principal components when d > 2 (scikit-learn PCA), the code against
    a random jitter when d = 1."""
    z = np.asarray(codes, dtype=np.float64)
    n, d = z.shape
    if d == 1:
        xy = np.column_stack([z[:, 0], np.random.default_rng(seed).uniform(-1, 1, n)])
        axis_names, title = ("z1", "jitter"), "codes (d = 1)"
    elif d == 2:
        xy, axis_names, title = z, ("z1", "z2"), "codes"
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(z)
        xy = pca.transform(z)
        share = pca.explained_variance_ratio_
        axis_names = (f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%})")
        title = f"codes, PCA of d = {d}"
    fig = Figure(figsize=(6.0, 5.2), layout="constrained")
    ax = fig.subplots()
    for name, mask, colour in _label_colours(labels, n):
        ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.7, color=colour, label=name, linewidths=0)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title)
    if labels is not None:
        ax.legend(markerscale=2.5, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(alpha=0.3)
    return _png(fig)


def latent_boxplots(codes: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """One panel per latent dimension (the first :data:`MAX_PANELS`), a box per label:
    which dimensions separate which classes."""
    z = np.asarray(codes, dtype=np.float64)
    d = z.shape[1]
    shown = min(d, MAX_PANELS)
    title = None if shown == d else f"first {shown} of {d} latent dimensions"
    groups = _label_colours(labels, z.shape[0])
    fig, axes = _grid(shown, 4, (max(3.0, 0.35 * len(groups) + 1.2), 2.6), title)
    for j, ax in enumerate(axes):
        data = [z[mask, j] for _, mask, _ in groups]
        box = ax.boxplot(data, patch_artist=True, showfliers=False, widths=0.6)
        for patch, (_, _, colour) in zip(box["boxes"], groups, strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.6)
        ax.set_xticks(range(1, len(groups) + 1), [name for name, _, _ in groups], fontsize=7)
        ax.set_title(f"z{j + 1}", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def marginal_histograms(codes: np.ndarray, prior_var: float = 1.0) -> bytes:
    """Histogram of each code marginal (the first :data:`MAX_PANELS`) against the prior's
    marginal density N(0, prior_var): where Q_Z's marginals miss P_Z's."""
    z = np.asarray(codes, dtype=np.float64)
    d = z.shape[1]
    shown = min(d, MAX_PANELS)
    title = f"code marginals vs N(0, {prior_var:g})"
    if shown < d:
        title += f", first {shown} of {d} dimensions"
    fig, axes = _grid(shown, 4, (3.0, 2.4), title)
    s = math.sqrt(prior_var)
    for j, ax in enumerate(axes):
        lo = min(z[:, j].min(), -4 * s)
        hi = max(z[:, j].max(), 4 * s)
        ax.hist(z[:, j], bins=40, range=(lo, hi), density=True, color="C0", alpha=0.6)
        t = np.linspace(lo, hi, 300)
        ax.plot(
            t, np.exp(-0.5 * t**2 / prior_var) / (s * math.sqrt(2 * math.pi)), "C3", linewidth=1.5
        )
        ax.set_title(f"z{j + 1}", fontsize=10)
        ax.set_yticks([])
    return _png(fig)
