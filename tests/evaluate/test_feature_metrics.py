"""KID, precision/recall/density/coverage, FID_inf and the FID bootstrap, against independent
re-computations and on real MNIST / Fashion-MNIST. The estimators do not depend on which
features they get, so the real-data tests use pixels (or a PCA of them) as features, which
keeps them fast; the Inception features go through the same functions in evaluate_run."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from waekit_testruns import real_images, real_labels

from waekit.evaluate import feature_metrics as fm
from waekit.evaluate.fid import frechet_distance_statistics, gaussian_statistics


def _pixels(name: str, n: int) -> np.ndarray:
    return real_images(name, n).reshape(n, -1).astype(np.float64) / 255.0


# -- KID ---------------------------------------------------------------------------------
def test_polynomial_mmd_equals_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.5, 1.2, size=(9, 5))

    def k(a, b):
        return (a @ b / 5 + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(9)) / (7 * 9)
    assert fm.polynomial_mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_of_a_set_against_itself_is_about_zero_and_positive_between_sets():
    # two disjoint random halves of one set (the test split is ordered by writer group)
    x = np.random.default_rng(0).permutation(_pixels("mnist", 1000))
    same = fm.kid(x[:500], x[500:], subsets=20, subset_size=100, seed=1)
    # each subset's estimate is unbiased for MMD^2 between the halves, which is ~0
    assert abs(same["value"]) < same["sd"]
    other = fm.kid(x[:500], _pixels("fashion-mnist", 200), subsets=10, subset_size=100, seed=1)
    assert other["value"] > 10 * same["sd"]
    assert other["subset_size"] == 100 and other["subsets"] == 10


def test_kid_is_unbiased_small_subsets_average_to_the_large_n_value():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 8))
    y = rng.normal(0.15, 1.1, size=(2000, 8))
    large = fm.polynomial_mmd2_unbiased(x, y)  # all 2000 of each
    small = fm.kid(x, y, subsets=400, subset_size=20, seed=4)  # 20 points per subset
    stderr = small["sd"] / np.sqrt(400)
    assert abs(small["value"] - large) < 4 * stderr
    # a biased (V-statistic) estimate at 20 points would sit far above: it adds the diagonal
    d = x.shape[1]
    bias = (
        np.mean(((x[:20] ** 2).sum(1) / d + 1) ** 3) + np.mean(((y[:20] ** 2).sum(1) / d + 1) ** 3)
    ) / 20
    assert bias > 10 * stderr


# -- precision, recall, density, coverage --------------------------------------------------
def _brute_prdc(real, fake, k, k_dc):
    rr, ff, fr = cdist(real, real), cdist(fake, fake), cdist(fake, real)
    rad_r = np.sort(rr, axis=1)[:, k]
    rad_f = np.sort(ff, axis=1)[:, k]
    rad_dc = np.sort(rr, axis=1)[:, k_dc]
    precision = np.mean(
        [any(fr[j, i] <= rad_r[i] for i in range(len(real))) for j in range(len(fake))]
    )
    recall = np.mean(
        [any(fr[j, i] <= rad_f[j] for j in range(len(fake))) for i in range(len(real))]
    )
    density = sum((fr[j] <= rad_dc).sum() for j in range(len(fake))) / (k_dc * len(fake))
    coverage = np.mean([(fr[:, i] <= rad_dc[i]).any() for i in range(len(real))])
    return precision, recall, density, coverage


def test_prdc_equals_brute_force_re_computation():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(60, 6)), rng.normal(0.4, 1.3, size=(45, 6))
    got = fm.precision_recall(real, fake, k=3, k_dc=5, chunk=7)
    p, r, d, c = _brute_prdc(real, fake, 3, 5)
    assert (got["precision"], got["recall"], got["coverage"]) == pytest.approx((p, r, c))
    assert got["density"] == pytest.approx(d, rel=1e-12)


def test_precision_recall_one_for_identical_sets_and_recall_falls_when_classes_drop():
    x = _pixels("mnist", 1000)
    labels = real_labels("mnist", 1000)
    same = fm.precision_recall(x, x)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    real, held = x[:500], x[500:]
    held_labels = labels[500:]
    full = fm.precision_recall(real, held)
    half = fm.precision_recall(real, held[held_labels < 5])  # digits 5-9 missing
    one = fm.precision_recall(real, held[held_labels == 1])  # only ones
    # fewer modes: recall and coverage fall; what is generated still lies on the manifold
    assert full["recall"] > half["recall"] + 0.15 > one["recall"] + 0.3
    assert full["coverage"] > half["coverage"] > one["coverage"]
    assert min(full["precision"], half["precision"], one["precision"]) > 0.6


# -- FID_inf and the bootstrap -------------------------------------------------------------
@pytest.fixture(scope="module")
def pca_features():
    """MNIST and Fashion-MNIST test pixels through one fixed random projection to 32-d."""
    mnist = np.random.default_rng(0).permutation(_pixels("mnist", 4000))
    fashion = _pixels("fashion-mnist", 1000)
    basis = np.random.default_rng(1).normal(size=(784, 32)) / 28.0
    return mnist @ basis, fashion @ basis


def test_fid_infinity_is_below_small_n_fid_and_near_large_n_fid(pca_features):
    mnist, _ = pca_features
    real, fake = mnist[:2000], mnist[2000:]  # two disjoint real sets of one distribution
    got = fm.fid_infinity(real, fake, points=5, n_min=100, seed=0)
    assert got["n"][0] == 100 and got["n"][-1] == 2000
    assert got["value"] < got["fid"][0]  # FID at N = 100 is biased upward
    fid_large = got["fid"][-1]
    # the true FID is 0 here and the intercept is an estimate of it, within the fit's error
    assert abs(got["value"]) < fid_large + 3 * got["residual"]
    assert got["slope"] > 0
    # the line is a least-squares fit: its residuals are orthogonal to (1, 1/N)
    x = 1.0 / np.array(got["n"])
    r = np.array(got["fid"]) - (got["value"] + got["slope"] * x)
    assert abs(r.sum()) < 1e-8 and abs((r * x).sum()) < 1e-10


def test_fid_bootstrap_interval_brackets_and_narrows_with_n(pca_features):
    mnist, fashion = pca_features
    point = frechet_distance_statistics(
        gaussian_statistics(fashion[:1000]), gaussian_statistics(mnist[:1000])
    )
    wide = fm.fid_bootstrap(mnist[:250], fashion[:250], resamples=30, seed=0)
    narrow = fm.fid_bootstrap(mnist[:1000], fashion[:1000], resamples=30, seed=0)
    assert narrow["low"] < point * 1.05 and narrow["high"] > point * 0.95
    # the spread of an average-like statistic falls as 1 / sqrt(N): about 2x from 250 to 1000
    assert 1.3 < wide["sd"] / narrow["sd"] < 3.5
    again = fm.fid_bootstrap(mnist[:250], fashion[:250], resamples=30, seed=0)
    assert again == wide
