"""Sample-quality metrics computed from Inception features already extracted (no second pass).

- :func:`kid`: the kernel inception distance (Binkowski et al. 2018), the unbiased MMD^2
  with the cubic polynomial kernel k(x, y) = (x . y / d + 1)^3, mean and standard deviation
  over random subsets. Unbiased at any N, so it ranks models at small N as at large N.
- :func:`precision_recall`: the k-NN manifold precision and recall (Kynkaanniemi et al.
  2019) with density and coverage (Naeem et al. 2020). Precision: the share of generated
  points inside some real point's k-NN ball; recall: the share of real points inside some
  generated point's k-NN ball; density: the mean count of real balls holding a generated
  point, over k; coverage: the share of real balls holding at least one generated point.
- :func:`fid_infinity`: FID at several N is linear in 1/N to first order (Chong and Forsyth
  2020); the intercept of the least-squares line is FID extrapolated to N = infinity.
- :func:`fid_bootstrap`: a percentile interval for FID at the N used, resampling both
  feature sets with replacement.

All take (n, d) feature arrays (Inception pool features in waekit; any features work).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from waekit.evaluate.fid import frechet_distance_statistics, gaussian_statistics

__all__ = [
    "polynomial_mmd2_unbiased",
    "kid",
    "precision_recall",
    "fid_infinity",
    "fid_bootstrap",
]


def _features(f: np.ndarray, name: str) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"{name} must be (n >= 2, d) features, got shape {f.shape}")
    return f


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3) -> float:
    """Unbiased MMD^2 between samples x (m, d) and y (n, d) with k(a, b) = (a . b / d + 1)^p:

    sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
    - 2 sum_{i, j} k(x_i, y_j) / (m n).
    """
    x, y = _features(x, "x"), _features(y, "y")
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** degree
    kyy = (y @ y.T / d + 1.0) ** degree
    kxy = (x @ y.T / d + 1.0) ** degree
    m, n = x.shape[0], y.shape[0]
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2.0 * kxy.mean())


def kid(
    real: np.ndarray,
    fake: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """KID: polynomial-kernel unbiased MMD^2 on ``subsets`` random subsets (without
    replacement within a subset) of ``min(subset_size, n_real, n_fake)`` points of each set.

    Returns {"value": mean, "sd": standard deviation over subsets, "subsets", "subset_size"}.
    The mean is unbiased for MMD^2; sd measures the spread of one subset's estimate.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    m = min(subset_size, real.shape[0], fake.shape[0])
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            polynomial_mmd2_unbiased(
                real[rng.choice(real.shape[0], m, replace=False)],
                fake[rng.choice(fake.shape[0], m, replace=False)],
            )
            for _ in range(subsets)
        ]
    )
    sd = float(values.std(ddof=1)) if subsets > 1 else float("nan")
    return {"value": float(values.mean()), "sd": sd, "subsets": subsets, "subset_size": m}


def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)), clipped at 0 against round-off."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def _knn_radius_sq(x: np.ndarray, k: int, chunk: int) -> np.ndarray:
    """Squared distance from each point of x to its k-th nearest other point of x."""
    out = np.empty(x.shape[0])
    for s in range(0, x.shape[0], chunk):
        d = _pairwise_sq(x[s : s + chunk], x)
        # column 0 of the sorted row is the point itself (distance 0)
        out[s : s + chunk] = np.partition(d, k, axis=1)[:, k]
    return out


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, k_dc: int = 5, chunk: int = 1000
) -> dict[str, float | int]:
    """Precision and recall (k-NN balls with ``k``), density and coverage (``k_dc``).

    With B_k(x_i) the ball around x_i of radius its distance to its k-th nearest neighbour
    in its own set: precision = mean_j [Y_j in some B_k(X_i)], recall = mean_i [X_i in some
    B_k(Y_j)] (X real, Y generated); density = (1 / (k_dc M)) sum_j sum_i [Y_j in B_kdc(X_i)],
    coverage = mean_i [some Y_j in B_kdc(X_i)]. Distances are computed in chunks of rows.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    if k >= min(real.shape[0], fake.shape[0]) or k_dc >= real.shape[0]:
        raise ValueError(
            f"k={k}, k_dc={k_dc} need more points than that in each set, got "
            f"{real.shape[0]} real and {fake.shape[0]} generated"
        )
    r_real = _knn_radius_sq(real, k, chunk)
    r_fake = _knn_radius_sq(fake, k, chunk)
    r_dc = r_real if k_dc == k else _knn_radius_sq(real, k_dc, chunk)
    in_real = np.zeros(fake.shape[0], dtype=bool)  # Y_j inside some real ball
    count = np.zeros(fake.shape[0])  # how many real k_dc-balls hold Y_j
    covered = np.zeros(real.shape[0], dtype=bool)  # some Y_j inside X_i's k_dc-ball
    in_fake = np.zeros(real.shape[0], dtype=bool)  # X_i inside some generated ball
    for s in range(0, fake.shape[0], chunk):
        d = _pairwise_sq(fake[s : s + chunk], real)  # (c, n_real)
        in_real[s : s + chunk] = (d <= r_real[None, :]).any(1)
        inside_dc = d <= r_dc[None, :]
        count[s : s + chunk] = inside_dc.sum(1)
        covered |= inside_dc.any(0)
        in_fake |= (d <= r_fake[s : s + chunk, None]).any(0)
    return {
        "precision": float(in_real.mean()),
        "recall": float(in_fake.mean()),
        "density": float(count.sum() / (k_dc * fake.shape[0])),
        "coverage": float(covered.mean()),
        "k": k,
        "k_dc": k_dc,
    }


def fid_infinity(
    real: np.ndarray,
    fake: np.ndarray,
    points: int = 5,
    n_min: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """FID extrapolated to N = infinity: FID(N) of random N-subsets of ``fake`` against all of
    ``real``, for ``points`` values of N evenly spaced in 1/N from ``n_min`` (default
    max(2, n_fake // 5)) to n_fake; least squares FID(N) = FID_inf + slope / N.

    Returns {"value": the intercept, "slope", "residual": RMS of the fit's residuals,
    "n": the N values, "fid": FID at each}.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    n = fake.shape[0]
    lo = max(2, n // 5) if n_min is None else n_min
    if points < 2 or not 2 <= lo < n:
        raise ValueError(f"FID_inf needs >= 2 points between n_min={lo} and n={n} (2 <= n_min < n)")
    inv = np.linspace(1.0 / lo, 1.0 / n, points)
    sizes = sorted({int(round(1.0 / v)) for v in inv})
    ref = gaussian_statistics(real)
    rng = np.random.default_rng(seed)
    values = []
    for m in sizes:
        pick = rng.choice(n, m, replace=False)
        values.append(frechet_distance_statistics(gaussian_statistics(fake[pick]), ref))
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    design = np.stack([np.ones_like(x), x], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, np.asarray(values), rcond=None)
    residual = np.asarray(values) - design @ np.array([intercept, slope])
    return {
        "value": float(intercept),
        "slope": float(slope),
        "residual": float(math.sqrt(np.mean(residual**2))),
        "n": sizes,
        "fid": [float(v) for v in values],
    }


def fid_bootstrap(
    real: np.ndarray, fake: np.ndarray, resamples: int = 10, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """A percentile bootstrap interval for FID at the N used: both sets resampled with
    replacement ``resamples`` times. Returns {"low", "high", "sd", "resamples", "level"}."""
    real, fake = _features(real, "real"), _features(fake, "fake")
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            frechet_distance_statistics(
                gaussian_statistics(fake[rng.integers(0, fake.shape[0], fake.shape[0])]),
                gaussian_statistics(real[rng.integers(0, real.shape[0], real.shape[0])]),
            )
            for _ in range(resamples)
        ]
    )
    tail = (1.0 - level) / 2.0
    return {
        "low": float(np.quantile(values, tail)),
        "high": float(np.quantile(values, 1.0 - tail)),
        "sd": float(values.std(ddof=1)) if resamples > 1 else float("nan"),
        "resamples": resamples,
        "level": level,
    }
