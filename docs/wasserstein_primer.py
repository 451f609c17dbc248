"""Every number of docs/wasserstein.md: couplings, the dual bound, exact OT, sliced W, KL, MMD.

Usage:
    python3 docs/wasserstein_primer.py [--n N] [--seed S] [--out-json F] [--figure F.png]
                                      [--write-page docs/wasserstein.md]

It prints the page's tables (Markdown) to stdout. ``--write-page`` puts them into the page
between its ``<!-- primer:NAME -->`` and ``<!-- /primer:NAME -->`` markers, so the page is
refreshed by one command; tests/test_primer.py checks the page against a fresh run.

Two pairs of distributions (the page explains why):
- the Gaussians P = N(0.5, 1) and Q = N(0, 1) on the line;
- the segments P = uniform on {0} x [0, 1] and Q = uniform on {delta} x [0, 1], delta = 0.1.

Each Monte Carlo figure comes with its standard error (SE) and, where one exists, the closed
form it estimates. Estimators that are biased at finite n (exact OT of samples, sliced W at
p = 1) come with a closed-form bound on that bias. Sampling is seeded per section, so a
section's numbers do not depend on which other sections ran.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ot
import torch
from scipy import integrate, special, stats
from scipy.spatial import cKDTree

from waekit.config import load_config, preset_names
from waekit.divergences import WAE_SCALES, gaussian_kl, mmd2, sliced_wasserstein

MU = 0.5  # P = N(MU, 1), Q = N(0, 1)
DELTA = 0.1  # P on {0} x [0, 1], Q on {DELTA} x [0, 1]
EULER_GAMMA = 0.5772156649015329
DEFAULT_N = 500
DEFAULT_SEED = 0
DEFAULT_REPEATS = 20
FIGURE_DRAWS = 400  # joint draws per coupling panel
FIGURE_SEGMENT_POINTS = 60  # points per segment in the matching panel
OFFSETS = (0.5, 0.1, 0.02, 0.0)  # the sweep of delta down to the same segment

# Section codes mixed into the seed, so that each section has its own random stream.
_SECTIONS = {"couplings": 1, "ot": 2, "segments": 3, "kl": 4, "mmd": 5, "offsets": 6, "figure": 7}


def _rng(seed: int, section: str, n: int) -> np.random.Generator:
    return np.random.default_rng([seed, _SECTIONS[section], n])


def _torch_generator(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


@contextlib.contextmanager
def _one_thread():
    """Run torch on one thread: on a shared machine the small kernel matrices here run ~15x
    faster than with threads competing for busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    """Sample mean and its standard error std / sqrt(count)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


# ---------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------


def abs_normal_mean(mu: float, sd: float) -> float:
    """E|D| for D ~ N(mu, sd^2): sd sqrt(2/pi) exp(-mu^2 / (2 sd^2)) + mu erf(mu / (sd sqrt 2))."""
    return sd * math.sqrt(2.0 / math.pi) * math.exp(-(mu**2) / (2.0 * sd**2)) + mu * math.erf(
        mu / (sd * math.sqrt(2.0))
    )


def gaussian_pair_closed_forms() -> dict[str, float]:
    """Closed forms for X ~ N(MU, 1), Y ~ N(0, 1)."""
    return {
        # Independent coupling: X - Y ~ N(MU, 2).
        "independent_abs": abs_normal_mean(MU, math.sqrt(2.0)),
        "independent_sq": MU**2 + 2.0,
        # Shift coupling Y = X - MU: |X - Y| = MU for every draw.
        "shift_abs": MU,
        "shift_sq": MU**2,
        # Dual bound with f(x) = x: E X - E Y; with f(x) = |x|: E|X| - E|Y|.
        "dual_identity": MU,
        "dual_abs": abs_normal_mean(MU, 1.0) - abs_normal_mean(0.0, 1.0),
        "w1": MU,
        # KL(N(MU, 1) || N(0, 1)) by waekit's closed form (logvar = 0).
        "kl": float(gaussian_kl(torch.tensor([[MU]]), torch.tensor([[0.0]]))[0]),
    }


def gaussian_w1_sample_expectation(n: int) -> float:
    """E W_1(P_n, Q_n) for two independent n-samples of N(MU, 1) and N(0, 1), exactly.

    On the line W_1 = int |F_n(t) - G_n(t)| dt, and at each t the counts A = n F_n(t) and
    B = n G_n(t) are independent Binomial(n, F(t - MU)) and Binomial(n, F(t)). By Fubini,
    E W_1(P_n, Q_n) = int E|A - B| / n dt, with the law of A - B a convolution of the two
    binomial laws; one quadrature in t. At n = 1 it is the independent coupling's E|X - Y|
    (two single points have one coupling), and it decreases to W_1 = MU as n grows.
    """
    counts = np.arange(n + 1)
    gaps = np.abs(np.arange(-n, n + 1))  # |A - B| for A - B = -n .. n

    def mean_gap(t: float) -> float:
        pa = stats.binom.pmf(counts, n, special.ndtr(t - MU))
        pb = stats.binom.pmf(counts, n, special.ndtr(t))
        return float(gaps @ np.convolve(pa, pb[::-1])) / n  # index j holds A - B = j - n

    value, _ = integrate.quad(mean_gap, -12.0, 12.0 + MU, points=[MU / 2], limit=400)
    return value


def segment_w1_upper(n: int, delta: float = DELTA) -> float:
    """Upper bound on E W_1 of two n-samples of the segments (the lower bound is delta).

    Pairing sorted heights U_(i), V_(i) costs mean_i sqrt(delta^2 + (U_(i) - V_(i))^2)
    <= sqrt(delta^2 + mean_i (U_(i) - V_(i))^2) (Jensen), and
    E mean_i (U_(i) - V_(i))^2 = 2 mean_i Var U_(i) = 1 / (3 (n + 1)) for uniform order
    statistics, so E W_1 <= sqrt(delta^2 + 1 / (3 (n + 1))) by Jensen once more.
    """
    return math.sqrt(delta**2 + 1.0 / (3.0 * (n + 1)))


def segment_sliced(p: float, delta: float = DELTA) -> float:
    """SW_p of the segments over directions uniform on the circle: delta (E|cos a|^p)^(1/p).

    Along theta = (cos a, sin a) the two projected segments are shifts of each other by
    delta cos a, and W_p of a shift is the shift, so SW_p^p = delta^p E|cos a|^p with
    E|cos a|^p = Gamma((p + 1) / 2) / (sqrt(pi) Gamma(p / 2 + 1)).
    """
    moment = math.gamma((p + 1) / 2) / (math.sqrt(math.pi) * math.gamma(p / 2 + 1))
    return delta * moment ** (1.0 / p)


def segment_sliced2_power_expected(n: int, delta: float = DELTA) -> float:
    """E of waekit's sliced W_2^2 estimate on two n-samples of the segments: delta^2/2 + 1/(6(n+1)).

    Along (cos a, sin a) the sorted pairs differ by sin a (U_(i) - V_(i)) - delta cos a; the
    cross term has mean 0, E cos^2 = E sin^2 = 1/2, and E mean_i (U_(i) - V_(i))^2 = 1/(3(n+1)).
    Exact for any n and any number of directions.
    """
    return delta**2 / 2.0 + 1.0 / (6.0 * (n + 1))


def segment_sliced1_bias_bound(n: int) -> float:
    """Upper bound on the bias of the sliced W_1 estimate: E|sin a| sqrt(1 / (3 (n + 1)))."""
    return (2.0 / math.pi) * math.sqrt(1.0 / (3.0 * (n + 1)))


def knn_kl_segments_prediction(n: int, delta: float = DELTA) -> float:
    """Large-n mean of the 1-NN KL estimate (d = 2) between two n-samples of the segments.

    A point's nearest neighbour in its own sample lies on its segment at distance
    rho ~ Exponential(rate 2 (n - 1)), so E log rho = -log(2 (n - 1)) - gamma; its nearest
    neighbour in the other sample lies at nu ~ delta. The estimate d mean log(nu / rho)
    + log(n / (n - 1)) is then 2 log(2 delta (n - 1)) + 2 gamma + log(n / (n - 1)): it grows
    by 2 log 10 = 4.6 for every tenfold n, without limit.
    """
    return 2.0 * math.log(2.0 * delta * (n - 1)) + 2.0 * EULER_GAMMA + math.log(n / (n - 1))


def imq_expectation_normal(mean: float, var: float, c: float) -> float:
    """E c / (c + Z^2) for Z ~ N(mean, var): pi sqrt(c) Voigt(mean; sqrt(var), sqrt(c)).

    The Voigt profile is the convolution of a normal density with the Cauchy density
    gamma / (pi (x^2 + gamma^2)); with gamma = sqrt(c) that density is c / (c + x^2) / (pi sqrt c).
    """
    return math.pi * math.sqrt(c) * float(special.voigt_profile(mean, math.sqrt(var), math.sqrt(c)))


def imq_mmd2_gaussians(scales: Sequence[float] = WAE_SCALES, prior_var: float = 1.0) -> float:
    """MMD^2 between N(MU, 1) and N(0, 1) under waekit's IMQ kernel (d = 1, C = 2 d prior_var).

    Within a sample X - X' ~ N(0, 2); across samples X - Y ~ N(MU, 2).
    """
    total = 0.0
    for s in scales:
        c = s * 2.0 * prior_var
        within = imq_expectation_normal(0.0, 2.0, c)
        across = imq_expectation_normal(MU, 2.0, c)
        total += 2.0 * within - 2.0 * across
    return total


def _imq_uniform_difference(b: float, c: float) -> float:
    """E c / (b + T^2) for T = U - U', U, U' uniform on [0, 1] (T has density 1 - |t|).

    2 c int_0^1 (1 - t) / (b + t^2) dt = 2 c [atan(1 / sqrt b) / sqrt b - log((b + 1) / b) / 2].
    """
    root = math.sqrt(b)
    return 2.0 * c * (math.atan(1.0 / root) / root - 0.5 * math.log((b + 1.0) / b))


def imq_mmd2_segments(
    delta: float = DELTA, scales: Sequence[float] = WAE_SCALES, prior_var: float = 1.0
) -> float:
    """MMD^2 between the segments under waekit's IMQ kernel (d = 2, C = 2 d prior_var).

    Within a segment ||x - x'||^2 = T^2; across them it is delta^2 + T^2.
    """
    total = 0.0
    for s in scales:
        c = s * 4.0 * prior_var
        within = _imq_uniform_difference(c, c)
        across = _imq_uniform_difference(c + delta**2, c)
        total += 2.0 * within - 2.0 * across
    return total


# ---------------------------------------------------------------------------------------------
# Samplers and estimators
# ---------------------------------------------------------------------------------------------


def sample_segments(
    rng: np.random.Generator, n: int, delta: float = DELTA
) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform on {0} x [0, 1] and n on {delta} x [0, 1], each of shape (n, 2)."""
    x = np.column_stack([np.zeros(n), rng.uniform(size=n)])
    y = np.column_stack([np.full(n, delta), rng.uniform(size=n)])
    return x, y


def exact_w1(x: np.ndarray, y: np.ndarray) -> float:
    """W_1 between two equal-weight point sets by exact OT (POT ``emd2``, Euclidean cost)."""
    x2 = x.reshape(len(x), -1)
    y2 = y.reshape(len(y), -1)
    cost = ot.dist(x2, y2, metric="euclidean")
    a = np.full(len(x2), 1.0 / len(x2))
    b = np.full(len(y2), 1.0 / len(y2))
    return float(ot.emd2(a, b, cost, numItermax=10_000_000))


def sorted_w1(x: np.ndarray, y: np.ndarray) -> float:
    """W_1 of two equal-size samples on the line: pair the sorted values (exact in 1-D)."""
    return float(np.abs(np.sort(x) - np.sort(y)).mean())


def knn_kl(x: np.ndarray, y: np.ndarray, k: int = 1) -> float:
    """k-NN estimate of KL(P || Q) from x ~ P (n, d) and y ~ Q (m, d).

    Wang, Kulkarni & Verdu (2009), eq. 5: (d / n) sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)),
    rho_k(i) the distance from x_i to its k-th neighbour among the other x, nu_k(i) to its
    k-th neighbour among y. Consistent where KL is finite.
    """
    x = x.reshape(len(x), -1)
    y = y.reshape(len(y), -1)
    n, d = x.shape
    m = len(y)
    rho = cKDTree(x).query(x, k=k + 1)[0][:, k]  # column 0 is the point itself
    nu = cKDTree(y).query(x, k=k)[0]
    nu = nu if k == 1 else nu[:, k - 1]
    return float(d * np.mean(np.log(nu / rho)) + math.log(m / (n - 1)))


def _mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """waekit's unbiased MMD^2 with the IMQ kernel summed over the WAE scales (prior_var 1)."""
    tx = torch.from_numpy(x.reshape(len(x), -1))
    ty = torch.from_numpy(y.reshape(len(y), -1))
    with _one_thread():
        return float(mmd2(tx, ty, kernel="imq", scales=WAE_SCALES, prior_var=1.0))


def _sliced(
    x: np.ndarray, y: np.ndarray, p: float, n_projections: int, gen: torch.Generator
) -> float:
    """waekit's sliced W_p over n_projections random unit directions."""
    with _one_thread():
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        return float(sliced_wasserstein(tx, ty, n_projections, p=p, generator=gen))


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def gaussian_couplings(n: int, seed: int) -> dict[str, Any]:
    """Costs of the two couplings and the dual bounds, from n draws of X ~ N(MU, 1)."""
    rng = _rng(seed, "couplings", n)
    x = rng.normal(MU, 1.0, size=n)
    y_independent = rng.normal(0.0, 1.0, size=n)
    y_shift = x - MU  # the shift coupling: same marginal N(0, 1), Y = X - MU
    out: dict[str, Any] = {"n": n}
    out["independent_abs"] = _mean_se(np.abs(x - y_independent))
    out["independent_sq"] = _mean_se((x - y_independent) ** 2)
    out["shift_abs"] = _mean_se(np.abs(x - y_shift))
    out["shift_sq"] = _mean_se((x - y_shift) ** 2)
    out["shift_marginal_mean"] = _mean_se(y_shift)
    out["shift_marginal_var"] = float(y_shift.var(ddof=1))
    # Dual bounds use two independent samples; f(X) - f(Y) has variance Var f(X) + Var f(Y).
    y = rng.normal(0.0, 1.0, size=n)
    for name, f in (("dual_identity", lambda t: t), ("dual_abs", np.abs)):
        fx, fy = f(x), f(y)
        se = math.sqrt(fx.var(ddof=1) / n + fy.var(ddof=1) / n)
        out[name] = (float(fx.mean() - fy.mean()), se)
    return out


def gaussian_ot(sizes: Sequence[int], repeats: int, seed: int) -> list[dict[str, Any]]:
    """Exact W_1 of n-samples of N(MU, 1) and N(0, 1), mean and SE over repeats."""
    rows = []
    for n in sizes:
        rng = _rng(seed, "ot", n)
        values, gaps = [], []
        for _ in range(repeats):
            x = rng.normal(MU, 1.0, size=n)
            y = rng.normal(0.0, 1.0, size=n)
            value = exact_w1(x, y)
            values.append(value)
            gaps.append(abs(value - sorted_w1(x, y)))
        rows.append(
            {
                "n": n,
                "w1": _mean_se(np.array(values)),
                "expected": gaussian_w1_sample_expectation(n),
                "max_gap_to_sorted": float(max(gaps)),
            }
        )
    return rows


def segments(
    sizes: Sequence[int], repeats: int, seed: int, n_projections: int = 50
) -> list[dict[str, Any]]:
    """Exact W_1 and waekit's sliced W (p = 1, 2) of n-samples of the segments, over repeats."""
    rows = []
    for n in sizes:
        rng = _rng(seed, "segments", n)
        gen = _torch_generator(rng)
        w1, sw1, sw2, sw2_power = [], [], [], []
        for _ in range(repeats):
            x, y = sample_segments(rng, n)
            w1.append(exact_w1(x, y))
            sw1.append(_sliced(x, y, 1.0, n_projections, gen))
            sw2.append(_sliced(x, y, 2.0, n_projections, gen))
            sw2_power.append(sw2[-1] ** 2)
        rows.append(
            {
                "n": n,
                "w1": _mean_se(np.array(w1)),
                "w1_upper": segment_w1_upper(n),
                "sw1": _mean_se(np.array(sw1)),
                "sw1_bias_bound": segment_sliced1_bias_bound(n),
                "sw2": _mean_se(np.array(sw2)),
                "sw2_power": _mean_se(np.array(sw2_power)),
                "sw2_power_expected": segment_sliced2_power_expected(n),
            }
        )
    return rows


def kl_trend(sizes: Sequence[int], repeats: int, seed: int) -> list[dict[str, Any]]:
    """1-NN KL estimates on the segments (both directions) and on the Gaussians, over n."""
    rows = []
    for n in sizes:
        rng = _rng(seed, "kl", n)
        forward, backward, gauss = [], [], []
        for _ in range(repeats):
            x, y = sample_segments(rng, n)
            forward.append(knn_kl(x, y))
            backward.append(knn_kl(y, x))
            gauss.append(knn_kl(rng.normal(MU, 1.0, size=n), rng.normal(0.0, 1.0, size=n)))
        rows.append(
            {
                "n": n,
                "segments_pq": _mean_se(np.array(forward)),
                "segments_qp": _mean_se(np.array(backward)),
                "segments_prediction": knn_kl_segments_prediction(n),
                "gaussians": _mean_se(np.array(gauss)),
            }
        )
    return rows


def mmd_pairs(n: int, repeats: int, seed: int) -> dict[str, Any]:
    """waekit's unbiased MMD^2 (IMQ, WAE scales) on both pairs, mean and SE over repeats."""
    rng = _rng(seed, "mmd", n)
    gauss, segs = [], []
    for _ in range(repeats):
        gauss.append(_mmd2(rng.normal(MU, 1.0, size=n), rng.normal(0.0, 1.0, size=n)))
        segs.append(_mmd2(*sample_segments(rng, n)))
    return {
        "n": n,
        "gaussians": _mean_se(np.array(gauss)),
        "gaussians_closed": imq_mmd2_gaussians(),
        "segments": _mean_se(np.array(segs)),
        "segments_closed": imq_mmd2_segments(),
    }


def offsets(deltas: Sequence[float], n: int, repeats: int, seed: int) -> list[dict[str, Any]]:
    """Each divergence between {0} x [0, 1] and {delta} x [0, 1] as delta shrinks to 0."""
    rows = []
    for delta in deltas:
        rng = _rng(seed, "offsets", n)
        gen = _torch_generator(rng)
        w1, sw2, kl, mm = [], [], [], []
        for _ in range(repeats):
            x, y = sample_segments(rng, n, delta)
            w1.append(exact_w1(x, y))
            sw2.append(_sliced(x, y, 2.0, 50, gen))
            kl.append(knn_kl(x, y))
            mm.append(_mmd2(x, y))
        rows.append(
            {
                "delta": delta,
                "n": n,
                "w1": _mean_se(np.array(w1)),
                "sw2": _mean_se(np.array(sw2)),
                "sw2_closed": segment_sliced(2.0, delta),
                "kl": _mean_se(np.array(kl)),
                "mmd2": _mean_se(np.array(mm)),
                "mmd2_closed": imq_mmd2_segments(delta),
            }
        )
    return rows


# The WAE paper's official code: squared L2 summed over pixels times 0.05 on every data set;
# MNIST pixels in [0, 1], CelebA pixels in [-1, 1] (docs/wasserstein.md, "From W_p to the WAE").
OFFICIAL = {
    "mnist": {"scale": 0.05, "pixel_range": 1.0, "lam": {"wae-mmd": 10.0, "wae-gan": 1.0}},
    "celeba": {"scale": 0.05, "pixel_range": 2.0, "lam": {"wae-mmd": 100.0, "wae-gan": 1.0}},
}


def preset_rows() -> list[dict[str, Any]]:
    """The WAE presets' D_Z, lambda and cost scale, read through waekit's config loader.

    ``lam / scale`` is the penalty weight against the plain summed squared error on [0, 1]
    pixels: dividing the objective by the scale changes only the step size, so two settings
    with the same ratio have the same optimum. The official ratio converts the paper code's
    scale to [0, 1] pixels (a [-1, 1] range multiplies squared errors by 4).
    """
    rows = []
    for name in preset_names():
        model = load_config(preset=name).model
        if not model.name.startswith("wae"):
            continue
        if model.name == "wae-mmd":
            penalty = f"MMD^2, {model.kernel.upper()} x {len(model.scales)} scales"
        else:
            penalty = f"latent critic {model.critic_layers} x {model.critic_hidden}"
            if getattr(model, "critic_log_prior", False):
                penalty += " + log p_Z"
        cost = "squared L2" if model.recon == "l2" else "Bernoulli"
        row = {
            "preset": name,
            "model": model.name,
            "penalty": penalty,
            "lam": float(model.lam),
            "cost": cost,
            "scale": float(model.recon_scale),
            "ratio": float(model.lam / model.recon_scale) if model.recon == "l2" else None,
            "latent_dim": int(model.latent_dim),
            "prior_var": float(model.prior_var),
            "official_ratio": None,
        }
        config = load_config(preset=name)
        official = OFFICIAL.get(config.data.name)
        if official and model.recon == "l2" and model.latent_dim > 1:
            scale01 = official["scale"] * official["pixel_range"] ** 2
            row["official_scale01"] = scale01
            row["official_ratio"] = official["lam"][model.name] / scale01
        rows.append(row)
    return rows


def closed_forms() -> dict[str, float]:
    """Every closed form the page quotes for the two pairs."""
    return {
        **gaussian_pair_closed_forms(),
        "segments_w1": DELTA,
        "segments_sw1": segment_sliced(1.0),
        "segments_sw2": segment_sliced(2.0),
        "mmd2_gaussians": imq_mmd2_gaussians(),
        "mmd2_segments": imq_mmd2_segments(),
    }


def _few(repeats: int) -> int:
    """Repeats for the costlier sections (KL at up to 100 n points, the offsets sweep)."""
    return max(repeats // 4, 2)


def run_all(n: int = DEFAULT_N, seed: int = DEFAULT_SEED, repeats: int = DEFAULT_REPEATS):
    """All sections at sample size n: the dict behind the page's tables."""
    small = max(n // 10, 10)
    return {
        "n": n,
        "seed": seed,
        "repeats": repeats,
        "closed": closed_forms(),
        "couplings": gaussian_couplings(n * repeats, seed),
        "gaussian_ot": gaussian_ot([small, n], repeats, seed),
        "segments": segments([small, n], repeats, seed),
        "kl": kl_trend([small, n, 10 * n, 100 * n], _few(repeats), seed),
        "mmd": mmd_pairs(n, repeats, seed),
        "offsets": offsets(list(OFFSETS), n, _few(repeats), seed),
        "presets": preset_rows(),
    }


# ---------------------------------------------------------------------------------------------
# The page's tables
# ---------------------------------------------------------------------------------------------


def _f(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}"


def _pm(pair: Sequence[float], digits: int = 4) -> str:
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def _g(value: float) -> str:
    return f"{value:.4g}"


def couplings_lines(c: dict[str, float], cp: dict[str, Any]) -> list[str]:
    """Rows of the couplings table: closed form beside Monte Carlo."""
    rows = [
        ("independent coupling, E\\|X − Y\\|", "independent_abs"),
        ("independent coupling, E(X − Y)²", "independent_sq"),
        ("shift coupling, E\\|X − Y\\|", "shift_abs"),
        ("shift coupling, E(X − Y)²", "shift_sq"),
        ("dual bound, f(x) = x: E f(X) − E f(Y)", "dual_identity"),
        ("dual bound, f(x) = \\|x\\|: E f(X) − E f(Y)", "dual_abs"),
    ]
    return [f"| {label} | {_f(c[key])} | {_pm(cp[key])} |" for label, key in rows]


def gaussian_ot_line(c: dict[str, float], row: dict[str, Any]) -> str:
    return (
        f"| N(0.5, 1), N(0, 1) | {row['n']:,} | {_pm(row['w1'])} | "
        f"{_f(row['expected'])} (exact) | {_f(c['w1'])} |"
    )


def segments_ot_line(row: dict[str, Any]) -> str:
    return (
        f"| segments, δ = {DELTA} | {row['n']:,} | {_pm(row['w1'])} | "
        f"{_f(DELTA)} to {_f(row['w1_upper'])} (bounds) | {_f(DELTA)} |"
    )


def sliced_line(c: dict[str, float], row: dict[str, Any]) -> str:
    return (
        f"| {row['n']:,} | {_pm(row['w1'])} | {_pm(row['sw1'])} | "
        f"{_f(c['segments_sw1'])} to {_f(c['segments_sw1'] + row['sw1_bias_bound'])} | "
        f"{_pm(row['sw2'])} | {_f(c['segments_sw2'])} | "
        f"{_pm(row['sw2_power'], 5)} | {_f(row['sw2_power_expected'], 5)} |"
    )


def kl_line(row: dict[str, Any]) -> str:
    return (
        f"| {row['n']:,} | {_pm(row['segments_pq'], 3)} | {_pm(row['segments_qp'], 3)} | "
        f"{_f(row['segments_prediction'], 3)} | {_pm(row['gaussians'], 3)} |"
    )


def offsets_line(row: dict[str, Any]) -> str:
    return (
        f"| {row['delta']:g} | {_pm(row['w1'])} | {_pm(row['sw2'])} | "
        f"{_f(row['sw2_closed'])} | {_pm(row['kl'], 2)} | {_pm(row['mmd2'], 5)} | "
        f"{_f(row['mmd2_closed'], 5)} |"
    )


def presets_line(row: dict[str, Any]) -> str:
    ratio = _g(row["ratio"]) if row["ratio"] is not None else ""
    official = _g(row["official_ratio"]) if row["official_ratio"] is not None else ""
    return (
        f"| {row['preset']} | {row['model']} | {row['penalty']} | {_g(row['lam'])} | "
        f"{row['cost']} | {_g(row['scale'])} | {ratio} | {official} | "
        f"{row['latent_dim']} | {_g(row['prior_var'])} |"
    )


def presets_table(rows: list[dict[str, Any]]) -> str:
    """The presets' D_Z, lambda and cost scale beside the official balance."""
    return "\n".join(
        [
            "| preset | model | D_Z | λ | cost | cost scale | λ / scale | official λ / scale "
            "| d | prior variance |",
            "|---|---|---|---:|---|---:|---:|---:|---:|---:|",
            *[presets_line(row) for row in rows],
        ]
    )


def render_tables(r: dict[str, Any]) -> dict[str, str]:
    """Markdown tables by marker name; the page embeds each between its markers."""
    c = r["closed"]
    few = _few(r["repeats"])
    tables: dict[str, str] = {}
    tables["couplings"] = "\n".join(
        [
            f"Monte Carlo over {r['couplings']['n']:,} draws (mean ± standard error).",
            "",
            "| quantity | closed form | Monte Carlo |",
            "|---|---:|---:|",
            *couplings_lines(c, r["couplings"]),
        ]
    )
    tables["ot"] = "\n".join(
        [
            f"Mean ± standard error over {r['repeats']} pairs of samples of n points each.",
            "",
            "| pair | n | exact OT of samples (`ot.emd2`) | expectation of the sample value | "
            "W_1 |",
            "|---|---:|---:|---:|---:|",
            *[gaussian_ot_line(c, row) for row in r["gaussian_ot"]],
            *[segments_ot_line(row) for row in r["segments"]],
        ]
    )
    tables["sliced"] = "\n".join(
        [
            "waekit's `sliced_wasserstein` with 50 random directions; mean ± standard error "
            f"over {r['repeats']} pairs of samples of n points each.",
            "",
            "| n | W_1 (exact OT) | sliced W_1 | its closed form (+ bias bound) | sliced W_2 | "
            "its closed form | sliced W_2² | its exact expectation δ²/2 + 1/(6(n+1)) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            *[sliced_line(c, row) for row in r["segments"]],
        ]
    )
    tables["kl"] = "\n".join(
        [
            "1-nearest-neighbour estimate (d = 2 for the segments, d = 1 for the Gaussians), "
            f"mean ± standard error over {few} pairs of samples of n points each.",
            "",
            "| n | segments KL(P‖Q) | segments KL(Q‖P) | large-n prediction "
            "2 ln(2δ(n−1)) + 2γ + ln(n/(n−1)) | Gaussians KL(P‖Q) |",
            "|---:|---:|---:|---:|---:|",
            *[kl_line(row) for row in r["kl"]],
            f"| closed form | ∞ | ∞ | | {_f(c['kl'], 3)} |",
        ]
    )
    m = r["mmd"]
    gauss_ot = next(row for row in r["gaussian_ot"] if row["n"] == r["n"])
    seg = next(row for row in r["segments"] if row["n"] == r["n"])
    kl_row = next(row for row in r["kl"] if row["n"] == r["n"])
    tables["summary"] = "\n".join(
        [
            f"n = {r['n']:,} points per sample; Monte Carlo as mean ± standard error (from the "
            "tables above, and for MMD² over "
            f"{r['repeats']} pairs of samples).",
            "",
            "| divergence | N(0.5, 1) vs N(0, 1): closed form | Monte Carlo | "
            "segments, δ = 0.1: closed form | Monte Carlo |",
            "|---|---:|---:|---:|---:|",
            f"| W_1 (exact OT of samples) | {_f(c['w1'])} | {_pm(gauss_ot['w1'])} | "
            f"{_f(c['segments_w1'])} | {_pm(seg['w1'])} |",
            f"| sliced W_2 (waekit) | {_f(c['w1'])} (in one dimension sliced W is W) | | "
            f"{_f(c['segments_sw2'])} | {_pm(seg['sw2'])} |",
            f"| KL(P‖Q) (1-NN estimate) | {_f(c['kl'])} | {_pm(kl_row['gaussians'])} | ∞ | "
            f"{_pm(kl_row['segments_pq'])} |",
            f"| MMD² (waekit, IMQ, 7 scales) | {_f(m['gaussians_closed'], 5)} | "
            f"{_pm(m['gaussians'], 5)} | {_f(m['segments_closed'], 5)} | "
            f"{_pm(m['segments'], 5)} |",
        ]
    )
    tables["offsets"] = "\n".join(
        [
            f"n = {r['offsets'][0]['n']:,} points per sample, mean ± standard error over {few} "
            "pairs of samples.",
            "",
            "| δ | W_1 (exact OT) | sliced W_2 | its closed form δ/√2 | KL(P‖Q) 1-NN estimate | "
            "MMD² | its closed form |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            *[offsets_line(row) for row in r["offsets"]],
        ]
    )
    tables["presets"] = presets_table(r["presets"])
    return tables


_BLOCK = re.compile(r"(<!-- primer:(\w+) -->\n)(.*?)\n?(<!-- /primer:\2 -->)", re.S)


def page_blocks(text: str) -> dict[str, str]:
    """The tables embedded in the page, by marker name."""
    return {m.group(2): m.group(3) for m in _BLOCK.finditer(text)}


def write_page(path: Path, tables: dict[str, str]) -> None:
    """Replace every marked block of the page with the freshly rendered table."""
    text = path.read_text()
    missing = sorted(set(tables) - set(page_blocks(text)))
    if missing:
        raise SystemExit(f"{path} has no markers for {missing}: add <!-- primer:NAME --> blocks")
    text = _BLOCK.sub(lambda m: m.group(1) + tables[m.group(2)] + "\n" + m.group(4), text)
    path.write_text(text)


# ---------------------------------------------------------------------------------------------
# The figure
# ---------------------------------------------------------------------------------------------


def figure(path: Path, seed: int = DEFAULT_SEED) -> None:
    """Joint samples of the two couplings, and the segments with their exact OT matching."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = _rng(seed, "figure", 0)
    closed = gaussian_pair_closed_forms()
    x = rng.normal(MU, 1.0, size=FIGURE_DRAWS)
    y = rng.normal(0.0, 1.0, size=FIGURE_DRAWS)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.4), dpi=80)
    for ax, yy, title in (
        (axes[0], y, f"independent coupling\nE|X − Y| = {closed['independent_abs']:.3f}"),
        (axes[1], x - MU, f"shift coupling Y = X − {MU}\n|X − Y| = {closed['shift_abs']:.3f}"),
    ):
        ax.scatter(x, yy, s=4, alpha=0.5, color="tab:blue")
        ax.plot([-3.5, 4.0], [-3.5, 4.0], color="grey", lw=0.8, ls="--", label="y = x")
        ax.set(xlim=(-3.5, 4.0), ylim=(-3.5, 4.0), xlabel="X ~ N(0.5, 1)", ylabel="Y ~ N(0, 1)")
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    k = FIGURE_SEGMENT_POINTS
    px, py = sample_segments(rng, k)
    plan = ot.emd(np.full(k, 1 / k), np.full(k, 1 / k), ot.dist(px, py, metric="euclidean"))
    ax = axes[2]
    for i, j in zip(*np.nonzero(plan > 1e-12), strict=True):
        ax.plot([px[i, 0], py[j, 0]], [px[i, 1], py[j, 1]], color="grey", lw=0.6)
    ax.scatter(px[:, 0], px[:, 1], s=10, color="tab:blue", label="P on {0} × [0, 1]")
    ax.scatter(py[:, 0], py[:, 1], s=10, color="tab:orange", label="Q on {0.1} × [0, 1]")
    ax.set(xlim=(-0.08, 0.4), ylim=(-0.05, 1.05), xlabel="first coordinate")
    w1 = exact_w1(px, py)
    ax.set_title(
        f"segments: exact OT of {k} + {k} points: {w1:.4f}\n(W_1 of the segments: {DELTA})",
        fontsize=9,
    )
    ax.legend(loc="center right", fontsize=7, frameon=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="points per sample")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--out-json", type=Path, help="write every number as JSON here")
    parser.add_argument("--figure", type=Path, help="write the figure (PNG) here")
    parser.add_argument("--write-page", type=Path, help="refresh the tables of this page")
    args = parser.parse_args(argv)
    if args.n < 20:
        parser.error(f"--n {args.n} is too small: give --n 20 or more (the page uses --n 500)")
    if args.repeats < 2:
        parser.error(f"--repeats {args.repeats} is too small: give --repeats 2 or more")
    results = run_all(args.n, args.seed, args.repeats)
    tables = render_tables(results)
    for name, table in tables.items():
        print(f"<!-- primer:{name} -->\n{table}\n<!-- /primer:{name} -->\n")
    if args.out_json:
        args.out_json.write_text(json.dumps(results, indent=1) + "\n")
    if args.figure:
        figure(args.figure, args.seed)
    if args.write_page:
        write_page(args.write_page, tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
