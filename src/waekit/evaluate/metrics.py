"""Evaluation numbers other than FID: pure functions of images, codes or a model.

- :func:`sharpness`: the WAE paper's blur measure (variance of the Laplacian).
- :func:`exact_ot_distance`: exact W_p between two equal-size point sets (POT).
- :func:`code_statistics`: per-dimension mean and variance of codes.
- :func:`importance_weighted_bound`: the IWAE lower bound on log p(x) (Gaussian encoders).
- :func:`fit_latent_gmm`, :func:`sample_latent_gmm`: the ex-post latent sampler, a Gaussian
  mixture fitted to training codes and decoded in place of prior draws.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from waekit import divergences as dv

__all__ = [
    "LAPLACIAN",
    "LUMA",
    "sharpness",
    "sharpness_per_image",
    "exact_ot_distance",
    "code_statistics",
    "log_likelihood_terms",
    "importance_weighted_bound",
    "fit_latent_gmm",
    "sample_latent_gmm",
]

#: The 3x3 Laplacian of the WAE paper's sharpness measure.
LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
#: ITU-R BT.601 luma weights, as TensorFlow's rgb_to_grayscale (used by the WAE code).
LUMA = np.array([0.2989, 0.5870, 0.1140])


def _as_float_images(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, C, H, W) float64 in [0, 1]; uint8 input is divided by 255."""
    if isinstance(images, torch.Tensor):
        images = images.detach().to("cpu").numpy()
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    return x.astype(np.float64)


def sharpness_per_image(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """Variance of the Laplacian-filtered grey image, one number per image, shape (N,).

    As the WAE paper's code (Tolstikhin et al. 2018, section 4): RGB is converted to grey
    with the BT.601 luma weights (TensorFlow's rgb_to_grayscale), convolved with
    [[0, 1, 0], [1, -4, 1], [0, 1, 0]] without padding ('valid'), and the population
    variance (ddof = 0) is taken over the (H - 2) x (W - 2) outputs. Images are floats
    in [0, 1] (uint8 is divided by 255); higher means sharper.
    """
    x = _as_float_images(images)
    n, c, h, w = x.shape
    if c == 3:
        grey = np.tensordot(x, LUMA, axes=([1], [0]))  # (N, H, W)
    elif c == 1:
        grey = x[:, 0]
    else:
        raise ValueError(f"sharpness needs 1 or 3 channels, got {c}")
    if h < 3 or w < 3:
        raise ValueError(f"sharpness needs images of at least 3x3 pixels, got {h}x{w}")
    # 'valid' 3x3 stencil: centre -4, the four neighbours +1
    lap = (
        grey[:, :-2, 1:-1]
        + grey[:, 2:, 1:-1]
        + grey[:, 1:-1, :-2]
        + grey[:, 1:-1, 2:]
        - 4.0 * grey[:, 1:-1, 1:-1]
    )
    return lap.reshape(n, -1).var(axis=1)


def sharpness(images: np.ndarray | torch.Tensor) -> float:
    """Mean over images of :func:`sharpness_per_image` (the number the WAE paper reports)."""
    return float(sharpness_per_image(images).mean())


def exact_ot_distance(
    x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, p: int = 2
) -> float:
    """Exact W_p between the empirical distributions of two equal-size point sets.

    W_p = ( min over couplings sum_ij T_ij ||x_i - y_j||^p )^(1/p), uniform weights 1/n,
    solved by network simplex (POT's ``ot.emd2``); with equal sizes the optimum is a
    permutation (Birkhoff), i.e. the assignment problem. Points are flattened to vectors.
    The cost is O(n^3): the caller picks n (about 1000 takes seconds).
    """
    import ot

    a = _flatten(x)
    b = _flatten(y)
    if a.shape != b.shape:
        raise ValueError(f"exact_ot_distance needs equal-size sets, got {a.shape} and {b.shape}")
    if p < 1:
        raise ValueError(f"p={p} is invalid: W_p needs p >= 1")
    if p == 2:
        cost = ot.dist(a, b, metric="sqeuclidean")
    else:
        cost = ot.dist(a, b, metric="euclidean") ** p
    weights = np.full(a.shape[0], 1.0 / a.shape[0])
    total = float(ot.emd2(weights, weights, cost, numItermax=max(100_000, 50 * a.shape[0] ** 2)))
    return max(total, 0.0) ** (1.0 / p)


def _flatten(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu").numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return x[:, None]
    return x.reshape(x.shape[0], -1)


def code_statistics(codes: np.ndarray | torch.Tensor) -> dict[str, list[float] | int]:
    """Per-dimension mean and (population) variance of codes (n, d), with n."""
    z = _flatten(codes)
    return {"n": int(z.shape[0]), "mean": z.mean(axis=0).tolist(), "var": z.var(axis=0).tolist()}


# -- the importance-weighted bound ----------------------------------------------------------
def log_likelihood_terms(model, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x | z) per image (n,) for the model's decoder, in nats.

    bernoulli: -sum_pixels BCE(x, sigmoid(logits)).
    l2: a Gaussian with variance s0^2 = 1 / (2 * recon_scale), so that its negative log is
    the training cost plus a constant: -recon_scale * sum (x - G(z))^2 - (D / 2) log(2 pi s0^2).
    """
    cfg = model.config
    logits = model.decode_logits(z).float()
    cost = dv.reconstruction_cost(x.float(), logits, cfg.recon, cfg.recon_scale)
    if cfg.recon == "bernoulli":
        return -cost
    pixels = x[0].numel()
    s0_sq = 1.0 / (2.0 * cfg.recon_scale)
    return -cost - 0.5 * pixels * math.log(2.0 * math.pi * s0_sq)


@torch.no_grad()
def importance_weighted_bound(
    model,
    x: torch.Tensor,
    k: int = 50,
    generator: torch.Generator | None = None,
    max_decodes: int = 4096,
) -> np.ndarray | None:
    """The IWAE bound (Burda et al. 2016, eq. 8) per image, in nats; None for a
    deterministic encoder (no q(z|x), so no bound).

    L_k(x) = log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x),  z_i ~ q(z | x),
    with p(z) = N(0, prior_var I) and log p(x | z) from :func:`log_likelihood_terms`.
    L_1 is the single-sample ELBO; E L_k increases with k towards log p(x). The log
    weights are combined in float64 by logsumexp. ``x`` (n, C, H, W) in [0, 1]; call with
    the model in eval mode. At most ``max_decodes`` images are decoded at once.
    """
    if not model.config.gaussian:
        return None
    if k < 1:
        raise ValueError(f"k={k} is invalid: the bound needs k >= 1 samples")
    post = model.posterior(x, sample=False)
    mu, logvar = post.mu.double(), post.logvar.double()
    std = torch.exp(0.5 * logvar)
    n, d = mu.shape
    chunk = max(1, max_decodes // n)
    log_w = []
    for start in range(0, k, chunk):
        m = min(chunk, k - start)
        # draw on the generator's device (CPU generators work for any model device)
        gen_device = generator.device if generator is not None else mu.device
        eps = torch.randn((m, n, d), generator=generator, device=gen_device, dtype=torch.float64)
        eps = eps.to(mu.device)
        z = mu + std * eps  # (m, n, d)
        log_q = -0.5 * (eps.pow(2) + logvar + math.log(2.0 * math.pi)).sum(-1)  # (m, n)
        log_prior = dv.gaussian_log_density(z, model.config.prior_var)  # (m, n)
        zf = z.reshape(m * n, d).to(post.mu.dtype)
        xs = x.unsqueeze(0).expand(m, *x.shape).reshape(m * n, *x.shape[1:])
        log_px = log_likelihood_terms(model, xs, zf).double().reshape(m, n)
        log_w.append(log_px + log_prior - log_q)
    lw = torch.cat(log_w)  # (k, n)
    bound = torch.logsumexp(lw, dim=0) - math.log(k)
    return bound.cpu().numpy()


# -- the ex-post latent sampler -------------------------------------------------------------
def fit_latent_gmm(codes: np.ndarray | torch.Tensor, n_components: int = 10, seed: int = 0):
    """A Gaussian mixture (full covariances) fitted to codes (n, d) by EM (scikit-learn).

    Sampling it instead of the prior (:func:`sample_latent_gmm`) is the ex-post density
    estimation of Ghosh et al. (2020): it measures what the decoder can do when the
    codes' aggregate Q_Z does not match the prior.
    """
    from sklearn.mixture import GaussianMixture

    z = _flatten(codes)
    if z.shape[0] < 2 * n_components:
        raise ValueError(
            f"fitting {n_components} mixture components needs at least {2 * n_components} "
            f"codes, got {z.shape[0]}; pass fewer components or more codes"
        )
    gmm = GaussianMixture(
        n_components=n_components, covariance_type="full", random_state=seed, reg_covar=1e-6
    )
    return gmm.fit(z)


def sample_latent_gmm(gmm, n: int, seed: int = 0) -> np.ndarray:
    """n codes (n, d) float32 from a fitted full-covariance mixture, reproducible by ``seed``:
    component c ~ Categorical(weights), z = mean_c + L_c eps with L_c L_c^T = cov_c."""
    rng = np.random.default_rng(seed)
    weights = np.asarray(gmm.weights_, dtype=np.float64)
    comps = rng.choice(len(weights), size=n, p=weights / weights.sum())
    chol = np.linalg.cholesky(gmm.covariances_)  # (K, d, d)
    eps = rng.standard_normal((n, gmm.means_.shape[1]))
    z = gmm.means_[comps] + np.einsum("nij,nj->ni", chol[comps], eps)
    return z.astype(np.float32)
