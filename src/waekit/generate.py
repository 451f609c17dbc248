"""The one pixel and inference path: uint8 <-> float conversion, batched encoding, decoding
and reconstruction, and latent interpolation, used by the trainer, the evaluator, the
reports and the CLI.

Images outside the models are uint8 (n, C, H, W) in [0, 255]; inside they are float in
[0, 1]. :func:`to_float` and :func:`to_uint8` are the only conversions (round(255 x),
clipped, as if the image were saved to PNG).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from waekit.models import LatentAutoEncoder

__all__ = [
    "to_float",
    "to_uint8",
    "batches",
    "sample",
    "reconstruct",
    "interpolate",
    "interpolation_codes",
    "encode",
    "encode_batched",
]


def to_float(images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (n, C, H, W) -> float32 in [0, 1] on ``device`` (x / 255)."""
    if isinstance(images, torch.Tensor):
        return images.to(device).float().div_(255.0)
    return (
        torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).to(device).float().div_(255.0)
    )


def to_uint8(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, C, H, W) uint8: uint8 input is returned as is, floats in [0, 1] are scaled by
    255 and rounded (values outside [0, 1] are clipped)."""
    if isinstance(images, torch.Tensor):
        images = images.detach().to("cpu").numpy()
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or floats in [0, 1], got dtype {images.dtype}")
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices [0, b), [b, 2b), ... covering range(n)."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} is invalid: must be >= 1")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def sample(model: LatentAutoEncoder, n: int, seed: int = 0, batch_size: int = 500) -> np.ndarray:
    """n images decoded from prior draws, uint8 (n, C, H, W); reproducible from ``seed``."""
    if n < 1:
        raise ValueError(f"n={n} is invalid: ask for at least one sample")
    model.eval()
    g = torch.Generator().manual_seed(seed)
    z = model.sample_prior(n, generator=g)
    return np.concatenate([to_uint8(model.decode(z[s]).float()) for s in batches(n, batch_size)])


@torch.inference_mode()
def reconstruct(model: LatentAutoEncoder, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Reconstructions of uint8 images (through the posterior mean), uint8."""
    model.eval()
    device = _device(model)
    return np.concatenate(
        [
            to_uint8(model.reconstruct(to_float(images[s], device)).float())
            for s in batches(len(images), batch_size)
        ]
    )


@torch.inference_mode()
def encode_batched(
    model: LatentAutoEncoder,
    images: np.ndarray,
    batch_size: int = 500,
    sample: bool = False,
    generator: torch.Generator | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Codes of uint8 images as a float64 CPU tensor (n, d): posterior means, or with
    ``sample`` draws z = mu + sigma eps from q(z|x) (Gaussian encoders; eps from
    ``generator``, drawn on the CPU). ``on_batch(k)`` is called after each batch of k."""
    model.eval()
    device = _device(model)
    parts = []
    for s in batches(len(images), batch_size):
        post = model.posterior(to_float(images[s], device), sample=False)
        z = post.mu
        if sample and post.logvar is not None:
            eps = torch.randn(z.shape, generator=generator, dtype=torch.float32).to(device)
            z = post.mu + torch.exp(0.5 * post.logvar) * eps
        parts.append(z.double().cpu())
        if on_batch is not None:
            on_batch(s.stop - s.start)
    return torch.cat(parts)


def encode(model: LatentAutoEncoder, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Codes (posterior means) of uint8 images, float32 (n, d)."""
    return encode_batched(model, images, batch_size).float().numpy()


def interpolation_codes(z_start: torch.Tensor, z_end: torch.Tensor, steps: int) -> torch.Tensor:
    """z_t = (1 - t) z_start + t z_end for ``steps`` values of t evenly in [0, 1], per pair:
    (P, d) and (P, d) -> (P, steps, d); row p goes from z_start[p] to z_end[p]."""
    if z_start.shape != z_end.shape or z_start.ndim != 2:
        raise ValueError(
            "z_start and z_end must both be (P, d), got "
            f"{tuple(z_start.shape)} and {tuple(z_end.shape)}"
        )
    if steps < 2:
        raise ValueError(f"steps={steps} is invalid: an interpolation needs at least 2 points")
    t = torch.linspace(0.0, 1.0, steps, device=z_start.device, dtype=z_start.dtype)
    return z_start[:, None, :] + t[None, :, None] * (z_end - z_start)[:, None, :]


@torch.inference_mode()
def interpolate(
    model: LatentAutoEncoder, start: np.ndarray, end: np.ndarray, steps: int = 10
) -> np.ndarray:
    """Decode z_t = (1 - t) z_start + t z_end for ``steps`` values of t in [0, 1], per pair.

    Returns uint8 (pairs, steps, C, H, W); row i goes from start[i] to end[i].
    """
    if steps < 2:
        raise ValueError(f"steps={steps} is invalid: an interpolation needs at least 2 points")
    model.eval()
    device = _device(model)
    za = model.encode(to_float(start, device))
    zb = model.encode(to_float(end, device))
    z = interpolation_codes(za, zb, steps)  # (pairs, steps, d)
    images = to_uint8(model.decode(z.flatten(0, 1)).float())
    return images.reshape(len(start), steps, *images.shape[1:])
