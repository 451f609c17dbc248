import math

import numpy as np
import pytest
import torch
from scipy import ndimage, stats
from scipy.optimize import linear_sum_assignment
from waekit_testruns import real_images

import waekit
from waekit.evaluate import metrics as M


# -- sharpness ------------------------------------------------------------------------------
def test_sharpness_of_constant_image_is_zero():
    assert M.sharpness(np.full((3, 1, 8, 8), 0.4)) == 0.0
    assert M.sharpness(np.full((2, 3, 5, 7), 0.9)) == pytest.approx(0.0, abs=1e-20)


def test_sharpness_of_checkerboard():
    # Interior pixels of a 0/1 checkerboard: Laplacian = 4 (1 - v) - 4 v = +-4, half each on
    # the 6 x 6 valid region of an 8 x 8 board: variance 16.
    board = (np.indices((8, 8)).sum(0) % 2).astype(np.float64)
    assert M.sharpness(board[None, None]) == pytest.approx(16.0)
    # RGB goes through the luma weights (sum 0.9999): variance 16 * 0.9999^2.
    rgb = np.repeat(board[None, None], 3, axis=1)
    assert M.sharpness(rgb) == pytest.approx(16.0 * 0.9999**2)
    # uint8 is divided by 255.
    assert M.sharpness((board * 255).astype(np.uint8)[None, None]) == pytest.approx(16.0)


def test_blur_lowers_sharpness():
    x = real_images("mnist", 16).astype(np.float64) / 255.0
    blurred = ndimage.gaussian_filter(x, sigma=(0, 0, 1.0, 1.0))
    s, s_blur = M.sharpness_per_image(x), M.sharpness_per_image(blurred)
    assert (s_blur < s).all()
    assert M.sharpness(blurred) < 0.5 * M.sharpness(x)


# -- exact optimal transport ----------------------------------------------------------------
def test_ot_of_a_permuted_set_is_zero():
    x = np.random.default_rng(0).normal(size=(60, 5))
    y = x[np.random.default_rng(1).permutation(60)]
    # ot.dist expands ||x||^2 + ||y||^2 - 2 x.y: zero up to round-off (~1e-16, rooted)
    assert M.exact_ot_distance(x, y) == pytest.approx(0.0, abs=1e-6)
    assert M.exact_ot_distance(x, y, p=1) == pytest.approx(0.0, abs=1e-6)


def test_ot_of_1d_gaussians_matches_closed_form():
    n = 500
    q = stats.norm.ppf((np.arange(n) + 0.5) / n)  # evenly spaced quantiles of N(0, 1)
    rng = np.random.default_rng(0)
    x, y = 1.0 + 2.0 * q, -0.5 + 0.5 * q
    w2 = M.exact_ot_distance(rng.permutation(x), rng.permutation(y))
    # In 1-D the optimal coupling pairs sorted values exactly...
    assert w2 == pytest.approx(np.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2)), rel=1e-9)
    # ...and W_2(N(m1, s1^2), N(m2, s2^2)) = sqrt((m1 - m2)^2 + (s1 - s2)^2).
    assert w2 == pytest.approx(math.sqrt(1.5**2 + 1.5**2), rel=2e-3)


@pytest.mark.parametrize("p", [1, 2])
def test_ot_equals_linear_sum_assignment(p):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 7)), rng.normal(size=(40, 7)) + 0.3
    cost = np.linalg.norm(x[:, None] - y[None], axis=-1) ** p
    rows, cols = linear_sum_assignment(cost)
    expected = cost[rows, cols].mean() ** (1 / p)
    assert M.exact_ot_distance(x, y, p=p) == pytest.approx(expected, rel=1e-9)
    assert M.exact_ot_distance(torch.from_numpy(x), torch.from_numpy(y), p=p) == pytest.approx(
        expected, rel=1e-9
    )


def test_ot_rejects_unequal_sizes():
    with pytest.raises(ValueError, match="equal-size"):
        M.exact_ot_distance(np.zeros((3, 2)), np.zeros((4, 2)))


def test_code_statistics():
    codes = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    s = M.code_statistics(codes)
    assert s == {"n": 3, "mean": [2.0, 1.0], "var": [8.0 / 3.0, 0.0]}


# -- the importance-weighted bound ----------------------------------------------------------
def _tiny(name, **fields):
    torch.manual_seed(0)
    model = waekit.build_model(name, (1, 6, 6), 3, "mlp", mlp_hidden=(16,), **fields)
    return model.eval()


def _x(n=8):
    return (torch.rand(n, 1, 6, 6, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def _elbo_single_sample(model, x, eps):
    """log p(x|z) + log p(z) - log q(z|x) at z = mu + sigma eps, with torch.distributions."""
    cfg = model.config
    h = model.encoder(x)
    mu, logvar = h.double().chunk(2, dim=1)
    std = torch.exp(0.5 * logvar)
    z = mu + std * eps
    logits = model.decoder(z.float()).double()
    if cfg.recon == "bernoulli":
        log_px = torch.distributions.Bernoulli(logits=logits).log_prob(x.double())
    else:
        s0 = math.sqrt(1.0 / (2.0 * cfg.recon_scale))
        log_px = torch.distributions.Normal(torch.sigmoid(logits), s0).log_prob(x.double())
    log_pz = torch.distributions.Normal(0.0, math.sqrt(cfg.prior_var)).log_prob(z)
    log_qz = torch.distributions.Normal(mu, std).log_prob(z)
    return log_px.flatten(1).sum(1) + log_pz.sum(1) - log_qz.sum(1)


@pytest.mark.parametrize(
    "name, fields",
    [("vae", {}), ("vae", {"recon": "l2", "recon_scale": 2.0, "prior_var": 2.0}), ("aae", {})],
)
def test_iw_bound_with_one_sample_is_the_elbo(name, fields):
    model, x = _tiny(name, **fields), _x()
    bound = M.importance_weighted_bound(model, x, k=1, generator=torch.Generator().manual_seed(5))
    eps = torch.randn((1, 8, 3), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        expected = _elbo_single_sample(model, x, eps[0]).numpy()
    np.testing.assert_allclose(bound, expected, rtol=1e-5)


def test_iw_bound_grows_with_k():
    model, x = _tiny("vae"), _x(16)
    with torch.no_grad():  # a decoder that depends strongly on z, so the bounds differ clearly
        for layer in model.decoder.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(4.0)
    means = []
    for k in (1, 10, 100):
        draws = [
            M.importance_weighted_bound(model, x, k=k, generator=torch.Generator().manual_seed(s))
            for s in range(5)
        ]
        means.append(np.mean(draws))
    assert means[0] < means[1] < means[2]  # about -62, -34, -30 nats
    # Chunked decoding gives the same numbers as one pass.
    gen = torch.Generator().manual_seed(9)
    one = M.importance_weighted_bound(model, x, k=7, generator=gen)
    gen = torch.Generator().manual_seed(9)
    chunked = M.importance_weighted_bound(model, x, k=7, generator=gen, max_decodes=16)
    np.testing.assert_allclose(chunked, one, rtol=1e-10)


def test_iw_bound_is_none_for_deterministic_encoders():
    assert M.importance_weighted_bound(_tiny("wae-mmd"), _x(), k=5) is None


# -- the GMM sampler ------------------------------------------------------------------------
def test_gmm_sampler_recovers_clusters_and_is_seeded():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 2)) * 0.1 + [3.0, 0.0]
    b = rng.normal(size=(1500, 2)) * [0.5, 0.2] + [-3.0, 1.0]
    gmm = M.fit_latent_gmm(np.concatenate([a, b]), n_components=2, seed=0)
    z = M.sample_latent_gmm(gmm, 20_000, seed=1)
    assert z.shape == (20_000, 2) and z.dtype == np.float32
    right = z[:, 0] > 0
    assert right.mean() == pytest.approx(0.25, abs=0.02)
    np.testing.assert_allclose(z[~right].mean(0), [-3.0, 1.0], atol=0.05)
    np.testing.assert_allclose(z[~right].std(0), [0.5, 0.2], rtol=0.05)
    np.testing.assert_array_equal(z, M.sample_latent_gmm(gmm, 20_000, seed=1))
    assert not np.array_equal(z, M.sample_latent_gmm(gmm, 20_000, seed=2))


def test_gmm_needs_enough_codes():
    with pytest.raises(ValueError, match="at least 20 codes"):
        M.fit_latent_gmm(np.zeros((5, 2)), n_components=10)
