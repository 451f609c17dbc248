"""Divergences against closed forms, numerical integrals and independent loop computations."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from waekit import WAE_SCALES
from waekit import divergences as dv

# -- KL ------------------------------------------------------------------------------------


def _kl_quad_1d(mu: float, logvar: float) -> float:
    """KL(N(mu, exp(logvar)) || N(0, 1)) = int q log(q / p), by numerical integration."""
    sd = math.exp(0.5 * logvar)
    q = scipy.stats.norm(mu, sd)
    p = scipy.stats.norm(0.0, 1.0)

    def integrand(t: float) -> float:
        return q.pdf(t) * (q.logpdf(t) - p.logpdf(t))

    lo, hi = mu - 12 * sd, mu + 12 * sd
    value, _ = scipy.integrate.quad(integrand, lo, hi, limit=200)
    return value


def test_gaussian_kl_equals_numerical_integral_summed_over_dims():
    mu = torch.tensor([[0.3, -1.2, 2.0], [0.0, 0.7, -0.4]], dtype=torch.float64)
    logvar = torch.tensor([[-0.5, 0.8, 0.0], [1.5, -2.0, 0.3]], dtype=torch.float64)
    kl = dv.gaussian_kl(mu, logvar)
    assert kl.shape == (2,)
    for i in range(2):
        expected = sum(
            _kl_quad_1d(mu[i, j].item(), logvar[i, j].item()) for j in range(mu.shape[1])
        )
        assert kl[i].item() == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_gaussian_kl_equals_monte_carlo_estimate():
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([0.5, -1.0, 0.2, 1.5], dtype=torch.float64)
    logvar = torch.tensor([0.4, -0.6, 1.0, 0.0], dtype=torch.float64)
    n = 400_000
    sd = torch.exp(0.5 * logvar)
    z = mu + sd * torch.randn(n, 4, generator=gen, dtype=torch.float64)
    log_q = torch.distributions.Normal(mu, sd).log_prob(z).sum(1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    samples = log_q - log_p
    estimate = samples.mean().item()
    stderr = samples.std().item() / math.sqrt(n)
    closed = dv.gaussian_kl(mu[None], logvar[None]).item()
    assert abs(estimate - closed) < 4 * stderr
    assert stderr < 0.01  # the check above is a tight one


def test_gaussian_kl_is_zero_at_the_prior_and_matches_hand_values():
    zeros = torch.zeros(3, 5)
    assert torch.equal(dv.gaussian_kl(zeros, zeros), torch.zeros(3))
    # mu = 1, var = 1 in each of 2 dims: 0.5 * (1 + 1 - 1 - 0) * 2 = 1.
    assert dv.gaussian_kl(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(1.0)
    # mu = 0, var = 2 in one dim: 0.5 * (2 - 1 - ln 2).
    one = dv.gaussian_kl(
        torch.zeros(1, 1, dtype=torch.float64),
        torch.full((1, 1), math.log(2.0), dtype=torch.float64),
    )
    assert one.item() == pytest.approx(0.5 * (1.0 - math.log(2.0)), rel=1e-12)


def test_gaussian_log_density_matches_scipy():
    z = torch.tensor([[0.1, -2.0, 0.5], [1.0, 1.0, 1.0]], dtype=torch.float64)
    for var in (1.0, 2.5):
        expected = scipy.stats.multivariate_normal(np.zeros(3), var * np.eye(3)).logpdf(z.numpy())
        np.testing.assert_allclose(dv.gaussian_log_density(z, var).numpy(), expected, rtol=1e-12)


# -- MMD -----------------------------------------------------------------------------------


def _kernel_loop(a: np.ndarray, b: np.ndarray, kernel: str, scales, prior_var: float) -> float:
    d = len(a)
    base = 2.0 * d * prior_var
    dist2 = 0.0
    for t in range(d):
        dist2 += (a[t] - b[t]) ** 2
    total = 0.0
    for s in scales:
        c = s * base
        total += c / (c + dist2) if kernel == "imq" else math.exp(-dist2 / c)
    return total


def _mmd2_loops(x: np.ndarray, y: np.ndarray, kernel: str, scales, prior_var: float) -> float:
    """MATH.md's unbiased estimator, term by term (n != m allowed)."""
    n, m = len(x), len(y)
    kxx = sum(
        _kernel_loop(x[i], x[j], kernel, scales, prior_var)
        for i in range(n)
        for j in range(n)
        if i != j
    )
    kyy = sum(
        _kernel_loop(y[i], y[j], kernel, scales, prior_var)
        for i in range(m)
        for j in range(m)
        if i != j
    )
    kxy = sum(
        _kernel_loop(x[i], y[j], kernel, scales, prior_var) for i in range(n) for j in range(m)
    )
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2.0 * kxy / (n * m)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("scales", [(1.0,), (0.5,), (3.0,), WAE_SCALES])
@pytest.mark.parametrize("prior_var", [1.0, 2.0])
@pytest.mark.parametrize("n,m,d", [(7, 7, 3), (6, 9, 2), (12, 5, 8)])
def test_mmd2_equals_double_loop(kernel, scales, prior_var, n, m, d):
    rng = np.random.default_rng(n * 100 + m * 10 + d)
    x = rng.normal(size=(n, d))
    y = 0.7 * rng.normal(size=(m, d)) + 0.3
    got = dv.mmd2(torch.from_numpy(x), torch.from_numpy(y), kernel, scales, prior_var)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(_mmd2_loops(x, y, kernel, scales, prior_var), abs=1e-6)


def test_mmd2_two_point_hand_values():
    # d = 1, prior_var = 1: C = 2.  x = {0, 1}, y = {0, 2}.
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    # IMQ: k_xx = 2/3, k_yy = 2/6, cross sum = 1 + 1/3 + 2/3 + 2/3 = 8/3 -> 2/3 + 1/3 - 4/3.
    assert dv.mmd2(x, y, "imq", (1.0,)).item() == pytest.approx(-1.0 / 3.0, abs=1e-12)
    # RBF: e^{-1/2} + e^{-2} - (1/2)(1 + e^{-2} + 2 e^{-1/2}) = (e^{-2} - 1) / 2.
    assert dv.mmd2(x, y, "rbf", (1.0,)).item() == pytest.approx(
        0.5 * (math.exp(-2.0) - 1.0), abs=1e-12
    )


def test_kernel_matrix_hand_values_and_diagonal():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    # d = 2, prior_var = 0.5: C = 2; ||x1 - x2||^2 = 2.
    imq = dv.kernel_matrix(x, x, "imq", (1.0, 2.0), 0.5)
    expected_off = 2.0 / (2.0 + 2.0) + 4.0 / (4.0 + 2.0)
    assert imq[0, 1].item() == pytest.approx(expected_off)
    assert torch.allclose(imq.diagonal(), torch.full((2,), 2.0, dtype=torch.float64))
    rbf = dv.kernel_matrix(x, x, "rbf", (1.0,), 0.5)
    assert rbf[1, 0].item() == pytest.approx(math.exp(-1.0))


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("scales", [(1.0,), WAE_SCALES])
def test_kernel_matrix_is_positive_semidefinite(kernel, scales):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(60, 4, generator=gen, dtype=torch.float64) * 2.0
    k = dv.kernel_matrix(x, x, kernel, scales, 1.5)
    assert torch.allclose(k, k.T)
    assert torch.linalg.eigvalsh(k).min().item() >= -1e-10


def test_mmd2_is_unbiased_for_one_distribution_and_positive_for_a_shift():
    gen = torch.Generator().manual_seed(1)
    trials, n, d = 400, 16, 2
    same, shifted = [], []
    for _ in range(trials):
        x = torch.randn(n, d, generator=gen, dtype=torch.float64)
        y = torch.randn(n, d, generator=gen, dtype=torch.float64)
        same.append(dv.mmd2(x, y, "imq", WAE_SCALES).item())
        shifted.append(dv.mmd2(x, y + 1.0, "imq", WAE_SCALES).item())
    same_a, shifted_a = np.array(same), np.array(shifted)
    se = same_a.std(ddof=1) / math.sqrt(trials)
    assert abs(same_a.mean()) < 4 * se
    assert (same_a < 0).any()  # an unbiased estimate of 0 must go negative
    se_shift = shifted_a.std(ddof=1) / math.sqrt(trials)
    assert shifted_a.mean() > 20 * se_shift
    assert shifted_a.mean() > 10 * abs(same_a.mean()) + 10 * se


def test_mmd2_of_a_sample_with_itself_is_the_diagonal_correction():
    # With x = y the estimator is 2 (mean off-diagonal k - mean of all k), which is <= 0
    # and shrinks like 1/n.
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    k = dv.kernel_matrix(x, x, "imq", (1.0,))
    off = (k.sum() - k.diagonal().sum()) / (50 * 49)
    expected = 2 * (off - k.mean())
    got = dv.mmd2(x, x, "imq", (1.0,))
    assert got.item() == pytest.approx(expected.item(), abs=1e-12)
    assert -0.05 < got.item() <= 0


def _arrays(draw, n: int, d: int) -> torch.Tensor:
    values = draw(
        st.lists(
            st.floats(-5, 5, allow_nan=False, allow_infinity=False), min_size=n * d, max_size=n * d
        )
    )
    return torch.tensor(values, dtype=torch.float64).view(n, d)


@st.composite
def _sample_pair(draw):
    d = draw(st.integers(1, 3))
    n = draw(st.integers(2, 6))
    m = draw(st.integers(2, 6))
    return _arrays(draw, n, d), _arrays(draw, m, d), draw(st.randoms(use_true_random=False))


@settings(max_examples=30, deadline=None)
@given(_sample_pair(), st.sampled_from(["imq", "rbf"]))
def test_mmd2_is_symmetric_and_permutation_invariant(pair, kernel):
    x, y, rnd = pair
    base = dv.mmd2(x, y, kernel, WAE_SCALES, 1.3)
    px = x[torch.tensor(rnd.sample(range(len(x)), len(x)))]
    py = y[torch.tensor(rnd.sample(range(len(y)), len(y)))]
    assert dv.mmd2(px, py, kernel, WAE_SCALES, 1.3).item() == pytest.approx(base.item(), abs=1e-9)
    assert dv.mmd2(y, x, kernel, WAE_SCALES, 1.3).item() == pytest.approx(base.item(), abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(_sample_pair())
def test_mmd2_is_invariant_to_a_common_rotation_and_translation(pair):
    x, y, _ = pair
    d = x.shape[1]
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64, generator=torch.Generator()))
    shift = torch.linspace(-1, 2, d, dtype=torch.float64)
    base = dv.mmd2(x, y, "imq", WAE_SCALES)
    moved = dv.mmd2(x @ q + shift, y @ q + shift, "imq", WAE_SCALES)
    assert moved.item() == pytest.approx(base.item(), abs=1e-8)


def test_mmd2_rejects_too_few_samples_and_mismatched_dims():
    with pytest.raises(ValueError, match="at least 2 samples"):
        dv.mmd2(torch.zeros(1, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="at least 2 samples"):
        dv.mmd2(torch.zeros(5, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="dimension"):
        dv.mmd2(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="gaussian"):
        dv.kernel_matrix(torch.zeros(3, 2), torch.zeros(3, 2), "gaussian")


def test_mmd2_has_finite_gradients_at_coincident_codes():
    z = torch.zeros(4, 3, requires_grad=True)
    p = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    for kernel in ("imq", "rbf"):
        (g,) = torch.autograd.grad(dv.mmd2(z, p, kernel, WAE_SCALES), z)
        assert torch.isfinite(g).all()


def test_mmd2_float32_agrees_with_float64():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(64, 8, generator=gen, dtype=torch.float64)
    y = torch.randn(64, 8, generator=gen, dtype=torch.float64) + 0.2
    hi = dv.mmd2(x, y, "imq", WAE_SCALES).item()
    lo = dv.mmd2(x.float(), y.float(), "imq", WAE_SCALES).item()
    assert lo == pytest.approx(hi, abs=1e-4)


# -- sliced Wasserstein --------------------------------------------------------------------


def _wp_sorted(a: np.ndarray, b: np.ndarray, p: float) -> float:
    return float(np.mean(np.abs(np.sort(a) - np.sort(b)) ** p) ** (1.0 / p))


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_sliced_wasserstein_of_a_sample_with_itself_is_zero(p):
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    assert dv.sliced_wasserstein(x, x, 20, p).item() == 0.0
    assert dv.sliced_wasserstein(x, x[torch.randperm(30)], 20, p).item() == 0.0


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_sliced_wasserstein_of_a_unit_gaussian_shift_is_half(p):
    # Seed 004: W_1(N(0.5, 1), N(0, 1)) = 0.5, and W_2 = 0.5 too for a pure shift.
    gen = torch.Generator().manual_seed(4)
    n = 200_000
    x = torch.randn(n, 1, generator=gen, dtype=torch.float64) + 0.5
    y = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    got = dv.sliced_wasserstein(x, y, 3, p, generator=gen).item()
    assert got == pytest.approx(0.5, abs=0.015)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_sliced_wasserstein_in_one_dimension_is_the_exact_sorted_matching(p):
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=40), rng.exponential(size=40)
    got = dv.sliced_wasserstein(
        torch.from_numpy(a)[:, None], torch.from_numpy(b)[:, None], 5, p
    ).item()
    assert got == pytest.approx(_wp_sorted(a, b, p), rel=1e-10)
    power = dv.sliced_wasserstein_power(
        torch.from_numpy(a)[:, None], torch.from_numpy(b)[:, None], 5, p
    ).item()
    assert power == pytest.approx(_wp_sorted(a, b, p) ** p, rel=1e-10)


def test_sliced_wasserstein_in_one_dimension_equals_ot_and_scipy():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=25), 1.5 * rng.normal(size=25) - 0.3
    ta, tb = torch.from_numpy(a)[:, None], torch.from_numpy(b)[:, None]
    w1 = dv.sliced_wasserstein(ta, tb, 4, 1.0).item()
    assert w1 == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-10)
    uniform = np.full(25, 1.0 / 25)
    for p in (1.0, 2.0):
        cost = np.abs(a[:, None] - b[None, :]) ** p
        exact = ot.emd2(uniform, uniform, cost) ** (1.0 / p)
        rows, cols = scipy.optimize.linear_sum_assignment(cost)
        assignment = cost[rows, cols].mean() ** (1.0 / p)
        got = dv.sliced_wasserstein(ta, tb, 4, p).item()
        assert got == pytest.approx(exact, rel=1e-8)
        assert got == pytest.approx(assignment, rel=1e-8)


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_sliced_wasserstein_is_at_most_the_exact_distance(p):
    # Projections onto unit directions are 1-Lipschitz, so SW_p <= W_p.
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) * 0.5 + 1.0
    cost = np.linalg.norm(a[:, None] - b[None], axis=-1) ** p
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    exact = cost[rows, cols].mean() ** (1.0 / p)
    sw = dv.sliced_wasserstein(torch.from_numpy(a), torch.from_numpy(b), 200, p).item()
    assert 0 < sw <= exact + 1e-12


def test_sliced_wasserstein_of_a_translated_copy_matches_its_expectation():
    # x + v against x: every projection is a pure shift theta.v, so SW_2^2 = mean (theta.v)^2,
    # whose expectation over uniform unit directions is |v|^2 / d.
    gen = torch.Generator().manual_seed(10)
    d = 4
    x = torch.randn(50, d, generator=gen, dtype=torch.float64)
    v = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    got = dv.sliced_wasserstein_power(x + v, x, 20_000, 2.0, generator=gen).item()
    assert got == pytest.approx(v.pow(2).sum().item() / d, rel=0.03)


def test_sliced_wasserstein_is_deterministic_with_a_generator():
    x = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
    y = torch.randn(20, 5, generator=torch.Generator().manual_seed(1))
    first = dv.sliced_wasserstein(x, y, 10, 2.0, generator=torch.Generator().manual_seed(42))
    again = dv.sliced_wasserstein(x, y, 10, 2.0, generator=torch.Generator().manual_seed(42))
    other = dv.sliced_wasserstein(x, y, 10, 2.0, generator=torch.Generator().manual_seed(43))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_sliced_wasserstein_scales_with_the_samples():
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.rand(20, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    base = dv.sliced_wasserstein(x, y, 10, 2.0, generator=torch.Generator().manual_seed(0))
    scaled = dv.sliced_wasserstein(
        3 * x, 3 * y, 10, 2.0, generator=torch.Generator().manual_seed(0)
    )
    assert scaled.item() == pytest.approx(3 * base.item(), rel=1e-12)


def test_sliced_wasserstein_rejects_bad_input():
    with pytest.raises(ValueError, match="equal-size"):
        dv.sliced_wasserstein(torch.zeros(4, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="n_projections"):
        dv.sliced_wasserstein(torch.zeros(4, 2), torch.zeros(4, 2), n_projections=0)


# -- the latent critic's losses ------------------------------------------------------------


def test_critic_losses_equal_the_naive_formulas_for_moderate_logits():
    lp = torch.tensor([-3.0, -0.5, 0.0, 1.2, 4.0], dtype=torch.float64)
    lz = torch.tensor([2.0, -1.0, 0.3, -4.0, 0.0], dtype=torch.float64)
    naive = -(torch.log(torch.sigmoid(lp)) + torch.log(1 - torch.sigmoid(lz)))
    torch.testing.assert_close(dv.critic_loss(lp, lz), naive, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        dv.critic_generator_loss(lz), -torch.log(torch.sigmoid(lz)), rtol=1e-12, atol=1e-12
    )
    # Hand value: both logits 0 -> D = 1/2 on both sides -> 2 ln 2.
    assert dv.critic_loss(torch.zeros(1), torch.zeros(1)).item() == pytest.approx(2 * math.log(2))


def test_critic_losses_are_stable_for_large_logits():
    lp = torch.tensor([100.0, -100.0, 100.0, -100.0], requires_grad=True)
    lz = torch.tensor([-100.0, 100.0, 100.0, -100.0], requires_grad=True)
    loss = dv.critic_loss(lp, lz)
    assert torch.isfinite(loss).all()
    # A perfect critic costs ~0, a perfectly wrong one ~200 (= 100 + 100).
    torch.testing.assert_close(loss.detach(), torch.tensor([0.0, 200.0, 100.0, 100.0]))
    gen = dv.critic_generator_loss(lz)
    torch.testing.assert_close(gen.detach(), torch.tensor([100.0, 0.0, 0.0, 100.0]))
    (loss.sum() + gen.sum()).backward()
    assert torch.isfinite(lp.grad).all() and torch.isfinite(lz.grad).all()


# -- reconstruction cost -------------------------------------------------------------------


def test_reconstruction_cost_l2_is_a_per_image_sum_with_scale():
    x = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]]], dtype=torch.float64)  # (1, 1, 2, 2)
    logits = torch.zeros_like(x)  # decoded image: 0.5 everywhere
    # (0.5^2 + 0.5^2 + 0 + 0.25^2) = 0.5625
    got = dv.reconstruction_cost(x, logits, "l2")
    assert got.shape == (1,)
    assert got.item() == pytest.approx(0.5625)
    assert dv.reconstruction_cost(x, logits, "l2", 0.05).item() == pytest.approx(0.05 * 0.5625)


def test_reconstruction_cost_bernoulli_equals_the_naive_bce_sum():
    x = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]], [[[1.0, 1.0], [0.0, 0.0]]]], dtype=torch.float64)
    logits = torch.tensor(
        [[[[-1.0, 2.0], [0.0, 0.5]]], [[[3.0, -0.5], [1.0, -2.0]]]], dtype=torch.float64
    )
    q = torch.sigmoid(logits)
    naive = -(x * torch.log(q) + (1 - x) * torch.log(1 - q)).sum(dim=(1, 2, 3))
    torch.testing.assert_close(dv.reconstruction_cost(x, logits, "bernoulli"), naive)
    # Hand value for the first pixel of image 0: x = 0, logit -1 -> -log(1 - sigmoid(-1)).
    single = dv.reconstruction_cost(x[:1, :, :1, :1], logits[:1, :, :1, :1], "bernoulli")
    assert single.item() == pytest.approx(math.log1p(math.exp(-1.0)))


def test_reconstruction_cost_scales_with_the_pixel_count():
    # A constant per-pixel error e costs (pixels * e^2); averaging would give e^2 at any size.
    per_pixel = (0.5 - torch.sigmoid(torch.tensor(0.3))).pow(2).item()
    for shape in [(2, 1, 28, 28), (2, 3, 64, 64), (2, 1, 14, 14)]:
        x = torch.full(shape, 0.5)
        cost = dv.reconstruction_cost(x, torch.full(shape, 0.3), "l2")
        pixels = math.prod(shape[1:])
        torch.testing.assert_close(cost, torch.full((2,), pixels * per_pixel), rtol=1e-5, atol=0)
    mnist = dv.reconstruction_cost(
        torch.full((1, 1, 28, 28), 0.2), torch.zeros(1, 1, 28, 28), "bernoulli"
    )
    assert mnist.item() == pytest.approx(
        784 * F.binary_cross_entropy(torch.tensor(0.5), torch.tensor(0.2)).item(), rel=1e-5
    )


def test_reconstruction_cost_rejects_an_unknown_cost():
    with pytest.raises(ValueError, match="'l1'"):
        dv.reconstruction_cost(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), "l1")


def test_the_divergences_are_pure_and_hold_the_kernel_table():
    """The kernel table lives beside the kernels; the config re-exports it, never the reverse."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(dv))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not {m for m in imported if m.startswith("waekit")}, imported
    assert dv.KERNELS == ("imq", "rbf") and dv.WAE_SCALES == (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
    import waekit.config

    assert waekit.config.WAE_SCALES is dv.WAE_SCALES and waekit.WAE_SCALES is dv.WAE_SCALES
