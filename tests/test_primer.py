"""docs/wasserstein_primer.py against closed forms, and docs/wasserstein.md against the script.

Monte Carlo figures are checked within 4 standard errors (SE) of what they estimate; where the
estimator is biased at finite n, within the closed-form bias bound the script states as well.
The seeds are fixed, so every check is deterministic.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "wasserstein.md"
SCRIPT = ROOT / "docs" / "wasserstein_primer.py"

_spec = importlib.util.spec_from_file_location("wasserstein_primer", SCRIPT)
wp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wp)

K = 4.0  # standard errors allowed between a Monte Carlo mean and what it estimates


def _within(mean_se: tuple[float, float], lo: float, hi: float | None = None) -> bool:
    """lo - K SE <= mean <= hi + K SE (hi defaults to lo: a two-sided check around lo)."""
    mean, se = mean_se
    hi = lo if hi is None else hi
    return lo - K * se <= mean <= hi + K * se


# -- closed forms against independent numerical integrals ---------------------------------


def test_closed_forms_equal_numerical_integrals():
    # E|D|, D ~ N(0.5, 2), by quadrature.
    d = scipy.stats.norm(0.5, math.sqrt(2.0))
    quad = scipy.integrate.quad(lambda t: abs(t) * d.pdf(t), -20, 20, points=[0.0])[0]
    assert wp.abs_normal_mean(0.5, math.sqrt(2.0)) == pytest.approx(quad, abs=1e-10)
    c = wp.gaussian_pair_closed_forms()
    assert c["independent_sq"] == 2.25  # 0.5^2 + Var(X - Y) = 0.25 + 2
    assert c["kl"] == pytest.approx(0.125, abs=1e-12)  # KL(N(0.5, 1) || N(0, 1)) = 0.5^2 / 2

    # IMQ expectation under a normal: the Voigt form against quadrature.
    for mean, var, cc in ((0.0, 2.0, 0.2), (0.5, 2.0, 4.0), (1.3, 0.5, 20.0)):
        z = scipy.stats.norm(mean, math.sqrt(var))
        quad = scipy.integrate.quad(lambda t, z=z, cc=cc: cc / (cc + t * t) * z.pdf(t), -40, 40)[0]
        assert wp.imq_expectation_normal(mean, var, cc) == pytest.approx(quad, rel=1e-9)

    # The segments' IMQ cross term: E C / (b + (U - U')^2) as a double integral over [0, 1]^2.
    for b, cc in ((0.4, 0.4), (4.01, 4.0), (40.0, 40.0)):
        quad = scipy.integrate.dblquad(
            lambda u, v, b=b, cc=cc: cc / (b + (u - v) ** 2), 0, 1, 0, 1
        )[0]
        assert wp._imq_uniform_difference(b, cc) == pytest.approx(quad, rel=1e-9)

    # Sliced W of the segments: delta (E|cos a|^p)^(1/p) by quadrature over the angle.
    for p in (1.0, 2.0, 3.0):
        moment = scipy.integrate.quad(lambda a, p=p: abs(math.cos(a)) ** p, 0, 2 * math.pi)[0]
        expected = 0.1 * (moment / (2 * math.pi)) ** (1 / p)
        assert wp.segment_sliced(p) == pytest.approx(expected, rel=1e-10)
    assert wp.segment_sliced(1.0) == pytest.approx(0.2 / math.pi, rel=1e-12)
    assert wp.segment_sliced(2.0) == pytest.approx(0.1 / math.sqrt(2), rel=1e-12)


def test_uniform_order_statistics_identity_behind_the_segment_bounds():
    # E mean_i (U_(i) - V_(i))^2 = 1 / (3 (n + 1)): exact sum of 2 Var(Beta(i, n + 1 - i)).
    for n in (1, 7, 50):
        i = np.arange(1, n + 1)
        var = i * (n + 1 - i) / ((n + 1) ** 2 * (n + 2))
        assert 2 * var.mean() == pytest.approx(1 / (3 * (n + 1)), rel=1e-12)
        assert wp.segment_sliced2_power_expected(n) == pytest.approx(0.005 + 1 / (6 * (n + 1)))


# -- Monte Carlo at small sizes against the closed forms -------------------------------------


def test_couplings_and_dual_bounds_match_closed_forms():
    c = wp.gaussian_pair_closed_forms()
    mc = wp.gaussian_couplings(4000, seed=1)
    for key in ("independent_abs", "independent_sq", "dual_identity", "dual_abs"):
        assert _within(mc[key], c[key]), (key, mc[key], c[key])
    # The shift coupling costs exactly 0.5 on every draw, and Y = X - 0.5 is N(0, 1).
    assert mc["shift_abs"][0] == pytest.approx(0.5, abs=1e-12)
    assert mc["shift_abs"][1] < 1e-12
    assert _within(mc["shift_marginal_mean"], 0.0)
    assert mc["shift_marginal_var"] == pytest.approx(1.0, abs=K * math.sqrt(2 / 4000))
    # The couplings bound W_1 = 0.5 from above; the identity witness reaches it from below.
    assert c["independent_abs"] > c["shift_abs"] == c["w1"] == c["dual_identity"] > c["dual_abs"]


def test_exact_ot_of_gaussian_samples_matches_its_exact_expectation_and_equals_sorting():
    (row,) = wp.gaussian_ot([200], repeats=10, seed=3)
    # POT's assignment equals the sorted pairing, which is exact in one dimension.
    assert row["max_gap_to_sorted"] < 1e-9
    assert _within(row["w1"], row["expected"])
    # The exact expectation: at n = 1 the only coupling is the independent one; it then falls
    # towards W_1 = 0.5, and stays above it (W_1 is convex).
    assert wp.gaussian_w1_sample_expectation(1) == pytest.approx(
        wp.abs_normal_mean(0.5, math.sqrt(2.0)), abs=1e-7
    )
    values = [wp.gaussian_w1_sample_expectation(n) for n in (2, 20, 200)]
    assert values[0] > values[1] > values[2] > 0.5
    assert row["expected"] == pytest.approx(values[2], abs=1e-9)
    # Against a direct simulation of many small samples: n = 5, 20,000 pairs.
    rng = np.random.default_rng(11)
    x = np.sort(rng.normal(0.5, 1.0, size=(20_000, 5)), axis=1)
    y = np.sort(rng.normal(0.0, 1.0, size=(20_000, 5)), axis=1)
    w1 = np.abs(x - y).mean(axis=1)
    mean, se = float(w1.mean()), float(w1.std(ddof=1) / math.sqrt(w1.size))
    assert _within((mean, se), wp.gaussian_w1_sample_expectation(5))


def test_segments_exact_ot_stays_at_delta_and_sliced_w_matches_its_closed_form():
    rows = wp.segments([40, 400], repeats=8, seed=4)
    for row in rows:
        n = row["n"]
        # Every pair of points is >= 0.1 apart, so every sample value is >= 0.1.
        assert row["w1"][0] >= 0.1 - 1e-12
        assert _within(row["w1"], 0.1, wp.segment_w1_upper(n))
        # Sliced W_2^2: exact expectation for any n; sliced W_1: closed form + bias bound.
        assert _within(row["sw2_power"], wp.segment_sliced2_power_expected(n))
        sw1 = wp.segment_sliced(1.0)
        assert _within(row["sw1"], sw1, sw1 + wp.segment_sliced1_bias_bound(n))
    # Sliced W is not W: at n = 400 it is far below 0.1 and near 0.1 / sqrt(2).
    assert rows[-1]["sw2"][0] < 0.08 < 0.1 <= rows[-1]["w1"][0]


def test_knn_kl_grows_with_n_on_the_segments_and_converges_on_the_gaussians():
    rows = wp.kl_trend([100, 1000, 10000], repeats=2, seed=5)
    for row in rows:
        for key in ("segments_pq", "segments_qp"):
            # The large-n prediction 2 ln(2 delta (n - 1)) + 2 gamma, up to O(1/n) ends effects.
            assert _within(
                row[key], row["segments_prediction"] - 0.15, row["segments_prediction"] + 0.15
            )
    means = [row["segments_pq"][0] for row in rows]
    steps = np.diff(means)
    # 2 ln 10 = 4.61 more for every tenfold n: no limit.
    assert np.all(steps > 2 * math.log(10) - 0.4), means
    (gauss,) = wp.kl_trend([4000], repeats=3, seed=6)
    # Finite KL: the estimator settles at 0.125 (its bias is O(1/n); 0.03 allowed).
    assert _within(gauss["gaussians"], 0.125 - 0.03, 0.125 + 0.03)


def test_knn_kl_estimator_matches_a_known_finite_kl_in_two_dimensions():
    # N(0, I) vs N((1, 0), I) in the plane: KL = 1/2.
    rng = np.random.default_rng(7)
    values = [
        wp.knn_kl(rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2)) + [1.0, 0.0])
        for _ in range(4)
    ]
    mean, se = float(np.mean(values)), float(np.std(values, ddof=1) / 2)
    assert _within((mean, se), 0.5 - 0.03, 0.5 + 0.03)


def test_mmd_on_both_pairs_matches_its_closed_form():
    mc = wp.mmd_pairs(200, repeats=10, seed=8)
    assert _within(mc["gaussians"], mc["gaussians_closed"])
    assert _within(mc["segments"], mc["segments_closed"])
    # MMD^2 vanishes when the segments coincide and grows like delta^2 for small delta.
    assert wp.imq_mmd2_segments(0.0) == pytest.approx(0.0, abs=1e-12)
    ratio = wp.imq_mmd2_segments(0.01) / wp.imq_mmd2_segments(0.02)
    assert ratio == pytest.approx(0.25, rel=0.01)


def test_offsets_sweep_matches_closed_forms():
    rows = wp.offsets([0.1, 0.0], n=150, repeats=3, seed=9)
    by_delta = {row["delta"]: row for row in rows}
    assert _within(by_delta[0.1]["w1"], 0.1, wp.segment_w1_upper(150))
    assert _within(by_delta[0.1]["mmd2"], by_delta[0.1]["mmd2_closed"])
    assert _within(by_delta[0.0]["mmd2"], 0.0)
    assert by_delta[0.1]["kl"][0] > 5.0  # far from 0 although W_1 is only 0.1
    assert abs(by_delta[0.0]["kl"][0]) < K * by_delta[0.0]["kl"][1] + 0.2


def test_presets_table_reads_the_configs():
    rows = {row["preset"]: row for row in wp.preset_rows()}
    for name in ("wae-mmd-mnist", "wae-gan-mnist", "wae-mmd-celeba", "wae-gan-celeba"):
        row = rows[name]
        assert row["ratio"] == pytest.approx(row["lam"] / row["scale"])
    # The official balance: 0.05 on [0, 1] MNIST pixels; 0.05 on [-1, 1] CelebA pixels = 0.2.
    assert rows["wae-mmd-mnist"]["official_ratio"] == pytest.approx(10 / 0.05)
    assert rows["wae-mmd-celeba"]["official_ratio"] == pytest.approx(100 / 0.2)
    assert rows["wae-gan-mnist"]["official_ratio"] == pytest.approx(1 / 0.05)
    assert rows["wae-gan-celeba"]["official_ratio"] == pytest.approx(1 / 0.2)


def test_cli_refuses_too_small_a_sample(capsys):
    with pytest.raises(SystemExit):
        wp.main(["--n", "5"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--n 5" in err and "--n 20" in err


# -- the page against the script ----------------------------------------------------------

_PM = re.compile(r"(-?\d+\.\d+) ± (\d+\.\d+)")


def _pairs(line: str) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in _PM.findall(line)]


def _row(block: str, start: str) -> str:
    (line,) = [line for line in block.splitlines() if line.startswith(start)]
    return line


@pytest.fixture(scope="module")
def page() -> dict[str, str]:
    return wp.page_blocks(PAGE.read_text())


def test_page_states_the_command_and_shows_its_figure(page):
    text = PAGE.read_text()
    n, seed, repeats = wp.DEFAULT_N, wp.DEFAULT_SEED, wp.DEFAULT_REPEATS
    assert f"docs/wasserstein_primer.py --n {n} --seed {seed} --repeats {repeats}" in text
    assert set(page) == {"couplings", "ot", "sliced", "kl", "summary", "offsets", "presets"}
    figure = ROOT / "docs" / "wasserstein.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.stat().st_size < 150_000
    assert "](wasserstein.png)" in text
    assert f"{wp.FIGURE_DRAWS} joint draws" in text
    k = wp.FIGURE_SEGMENT_POINTS
    assert f"{k} + {k} points" in text


def test_page_cheap_rows_equal_a_fresh_run(page):
    """Rows that take well under a second are recomputed at the page's seed and compared."""
    n, seed, repeats = wp.DEFAULT_N, wp.DEFAULT_SEED, wp.DEFAULT_REPEATS
    small = max(n // 10, 10)
    c = wp.closed_forms()
    couplings = wp.gaussian_couplings(n * repeats, seed)
    for line in wp.couplings_lines(c, couplings):
        assert line in page["couplings"].splitlines(), line
    (g_row,) = wp.gaussian_ot([small], repeats, seed)
    (s_row,) = wp.segments([small], repeats, seed)
    assert wp.gaussian_ot_line(c, g_row) in page["ot"].splitlines()
    assert wp.segments_ot_line(s_row) in page["ot"].splitlines()
    assert wp.sliced_line(c, s_row) in page["sliced"].splitlines()
    for row in wp.kl_trend([small, n], wp._few(repeats), seed):
        assert wp.kl_line(row) in page["kl"].splitlines()
    presets = wp.presets_table(wp.preset_rows())
    assert page["presets"] == presets, (
        "the presets changed: refresh the page with the command at its top"
    )
    # Closed forms quoted in the summary and the offsets sweep.
    summary = page["summary"]
    assert f"| {c['mmd2_gaussians']:.5f} |" in _row(summary, "| MMD²")
    assert f"| {c['mmd2_segments']:.5f} |" in _row(summary, "| MMD²")
    for delta in wp.OFFSETS:
        line = _row(page["offsets"], f"| {delta:g} |")
        assert f"| {wp.segment_sliced(2.0, delta):.4f} |" in line
        assert line.endswith(f"| {wp.imq_mmd2_segments(delta):.5f} |")


def test_page_costly_rows_agree_with_their_closed_forms(page):
    """Rows at the page's full size are checked against the closed forms and bounds."""
    n = wp.DEFAULT_N
    ot_rows = page["ot"]
    (w1,) = _pairs(_row(ot_rows, f"| N(0.5, 1), N(0, 1) | {n:,} |"))
    assert _within(w1, wp.gaussian_w1_sample_expectation(n))
    (w1,) = _pairs(_row(ot_rows, f"| segments, δ = 0.1 | {n:,} |"))
    assert w1[0] >= 0.1 and _within(w1, 0.1, wp.segment_w1_upper(n))
    w1, sw1, sw2, sw2_power = _pairs(_row(page["sliced"], f"| {n:,} |"))
    assert _within(sw2_power, wp.segment_sliced2_power_expected(n))
    sliced1 = wp.segment_sliced(1.0)
    assert _within(sw1, sliced1, sliced1 + wp.segment_sliced1_bias_bound(n))
    kl_means = []
    for size in (n // 10, n, 10 * n, 100 * n):
        pq, qp, gauss = _pairs(_row(page["kl"], f"| {size:,} |"))
        prediction = wp.knn_kl_segments_prediction(size)
        assert _within(pq, prediction - 0.15, prediction + 0.15)
        assert _within(qp, prediction - 0.15, prediction + 0.15)
        kl_means.append(pq[0])
    assert np.all(np.diff(kl_means) > 2 * math.log(10) - 0.4)
    assert _within(gauss, 0.125 - 0.03, 0.125 + 0.03)  # the largest n
    mmd_gauss, mmd_segments = _pairs(_row(page["summary"], "| MMD²"))[-2:]
    assert _within(mmd_gauss, wp.imq_mmd2_gaussians())
    assert _within(mmd_segments, wp.imq_mmd2_segments())
    for delta in wp.OFFSETS:
        w1, sw2, kl, mmd = _pairs(_row(page["offsets"], f"| {delta:g} |"))
        assert _within(w1, delta, math.sqrt(delta**2 + 1 / (3 * (n + 1))))
        assert _within(mmd, wp.imq_mmd2_segments(delta))
        assert sw2[0] <= math.sqrt(wp.segment_sliced2_power_expected(n, delta)) + K * sw2[1]
        assert (kl[0] > 5.0) if delta > 0 else (abs(kl[0]) < K * kl[1] + 0.2)
