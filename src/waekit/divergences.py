"""Divergences between distributions in latent space: pure, batched, differentiable functions.

Every function takes tensors on any device and returns tensors; none holds state.
The formulas are those of docs/math.md; each docstring names the equation it implements.
The kernel table (:data:`KERNELS`, :data:`WAE_SCALES`) lives here, beside the kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

import torch
import torch.nn.functional as F

#: The kernels of the MMD penalty (docs/math.md, section 3).
Kernel = Literal["imq", "rbf"]
KERNELS: tuple[str, ...] = get_args(Kernel)

#: The WAE paper's code sums the IMQ kernel over these multiples of C = 2 * d * prior_var.
WAE_SCALES: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

#: The reconstruction costs (docs/math.md, section 1).
ReconCost = Literal["l2", "bernoulli"]
RECON_COSTS: tuple[str, ...] = get_args(ReconCost)

__all__ = [
    "KERNELS",
    "RECON_COSTS",
    "WAE_SCALES",
    "gaussian_kl",
    "gaussian_log_density",
    "squared_distances",
    "kernel_matrix",
    "mmd2",
    "sliced_wasserstein",
    "sliced_wasserstein_power",
    "critic_loss",
    "critic_generator_loss",
    "reconstruction_cost",
]


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per sample, shape (n,).

    Closed form (Kingma & Welling, appendix B): 0.5 * sum_d (mu^2 + exp(logvar) - 1 - logvar).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def gaussian_log_density(z: torch.Tensor, var: float | torch.Tensor = 1.0) -> torch.Tensor:
    """log N(z; 0, var * I) per sample, shape (n,)."""
    var_t = torch.as_tensor(var, dtype=z.dtype, device=z.device)
    d = z.shape[-1]
    return -0.5 * (z.pow(2).sum(dim=-1) / var_t + d * torch.log(2 * math.pi * var_t))


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_i - y_j||^2 for all pairs, shape (n, m), clamped at 0 against round-off."""
    xx = x.pow(2).sum(dim=1, keepdim=True)  # (n, 1)
    yy = y.pow(2).sum(dim=1, keepdim=True).T  # (1, m)
    return (xx + yy - 2.0 * x @ y.T).clamp_min(0.0)


def kernel_matrix(
    x: torch.Tensor,
    y: torch.Tensor,
    kernel: Kernel = "imq",
    scales: Sequence[float] = (1.0,),
    prior_var: float = 1.0,
) -> torch.Tensor:
    """k(x_i, y_j), shape (n, m), summed over scales C_s = s * C with C = 2 * d * prior_var.

    IMQ: k = C_s / (C_s + ||x - y||^2);  RBF: k = exp(-||x - y||^2 / C_s)
    (docs/math.md, section 3).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r} is invalid: choose one of {KERNELS}")
    if len(scales) == 0:
        raise ValueError("scales is empty: give one or more positive kernel scales")
    d = x.shape[-1]
    base = 2.0 * d * prior_var
    dist = squared_distances(x, y)
    out = torch.zeros_like(dist)
    for s in scales:
        c = s * base
        out = out + (c / (c + dist) if kernel == "imq" else torch.exp(-dist / c))
    return out


def mmd2(
    x: torch.Tensor,
    y: torch.Tensor,
    kernel: Kernel = "imq",
    scales: Sequence[float] = (1.0,),
    prior_var: float = 1.0,
) -> torch.Tensor:
    """Unbiased estimate of MMD_k^2 between samples x (n, d) and y (m, d); a scalar.

    1/(n(n-1)) sum_{i!=j} k(x_i, x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j)
    - 2/(n m) sum_{i,j} k(x_i, y_j)      (Gretton et al. 2012, eq. 3; docs/math.md, section 3)
    The diagonal is left out of the within-sample sums only.
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"mmd2 needs at least 2 samples on each side, got {n} and {m}")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"mmd2 samples differ in dimension: {tuple(x.shape)} vs {tuple(y.shape)}")
    kxx = kernel_matrix(x, x, kernel, scales, prior_var)
    kyy = kernel_matrix(y, y, kernel, scales, prior_var)
    kxy = kernel_matrix(x, y, kernel, scales, prior_var)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return within_x + within_y - 2.0 * kxy.sum() / (n * m)


def _random_directions(
    d: int, n_projections: int, like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    theta = torch.randn(
        n_projections, d, generator=generator, device=like.device if generator is None else "cpu"
    )
    theta = theta.to(device=like.device, dtype=like.dtype)
    return theta / theta.norm(dim=1, keepdim=True)  # (L, d) unit directions


def sliced_wasserstein_power(
    x: torch.Tensor,
    y: torch.Tensor,
    n_projections: int = 50,
    p: float = 2.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean over random unit directions theta of W_p^p(theta^T x, theta^T y); a scalar.

    In one dimension the optimal coupling of two equal-size samples pairs their sorted
    values, so W_p^p = mean_i |x_(i) - y_(i)|^p (Kolouri et al., SWAE, eq. 11).
    This power form is what the SWAE penalty uses: it is smooth where the sets coincide.
    """
    if x.shape != y.shape:
        raise ValueError(
            "sliced_wasserstein compares equal-size samples, "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if n_projections < 1:
        raise ValueError(f"n_projections={n_projections} is invalid: must be >= 1")
    theta = _random_directions(x.shape[1], n_projections, x, generator)
    px = torch.sort(x @ theta.T, dim=0).values  # (n, L)
    py = torch.sort(y @ theta.T, dim=0).values
    return (px - py).abs().pow(p).mean()


def sliced_wasserstein(
    x: torch.Tensor,
    y: torch.Tensor,
    n_projections: int = 50,
    p: float = 2.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sliced Wasserstein distance SW_p = (mean_theta W_p^p(theta^T x, theta^T y))^(1/p)."""
    return sliced_wasserstein_power(x, y, n_projections, p, generator).pow(1.0 / p)


def critic_loss(logits_prior: torch.Tensor, logits_codes: torch.Tensor) -> torch.Tensor:
    """The latent critic's loss per sample, -[log D(p) + log(1 - D(z))], shape (n,).

    D = sigmoid(logit); computed from logits as softplus(-l_p) + softplus(l_z) for stability.
    The model multiplies it by lambda (docs/math.md, section 3).
    """
    return F.softplus(-logits_prior) + F.softplus(logits_codes)


def critic_generator_loss(logits_codes: torch.Tensor) -> torch.Tensor:
    """The encoder's non-saturating adversarial loss per sample, -log D(z) = softplus(-l_z)."""
    return F.softplus(-logits_codes)


def reconstruction_cost(
    x: torch.Tensor, logits: torch.Tensor, cost: ReconCost = "l2", scale: float = 1.0
) -> torch.Tensor:
    """Per-image reconstruction cost, SUMMED over pixels (never averaged), shape (n,).

    ``logits`` are the decoder's pre-sigmoid outputs; the decoded image is sigmoid(logits).
    l2: scale * sum (x - sigmoid(logits))^2;  bernoulli: sum of binary cross-entropy
    (docs/math.md, section 1).
    """
    if cost == "l2":
        per_pixel = (x - torch.sigmoid(logits)).pow(2) * scale
    elif cost == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        raise ValueError(f"reconstruction cost {cost!r} is invalid: choose one of {RECON_COSTS}")
    return per_pixel.flatten(1).sum(dim=1)
