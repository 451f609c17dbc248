"""Sampling, reconstruction, interpolation and encoding with a trained model, batched."""

from __future__ import annotations

import numpy as np
import torch

from waekit.models import LatentAutoEncoder
from waekit.report.grids import to_uint8

__all__ = ["to_float", "sample", "reconstruct", "interpolate", "encode"]


def to_float(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (n, C, H, W) -> float in [0, 1] on ``device``."""
    return (
        torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).to(device).float().div_(255.0)
    )


def _batched(fn, items: torch.Tensor | np.ndarray, batch_size: int) -> list:
    return [fn(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]


@torch.inference_mode()
def sample(model: LatentAutoEncoder, n: int, seed: int = 0, batch_size: int = 500) -> np.ndarray:
    """n images decoded from prior draws, uint8 (n, C, H, W); reproducible from ``seed``."""
    if n < 1:
        raise ValueError(f"n={n} is invalid: ask for at least one sample")
    model.eval()
    g = torch.Generator().manual_seed(seed)
    z = model.sample_prior(n, generator=g)
    return np.concatenate(_batched(lambda b: to_uint8(model.decode(b).float()), z, batch_size))


@torch.inference_mode()
def reconstruct(model: LatentAutoEncoder, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Reconstructions of uint8 images (through the posterior mean), uint8."""
    model.eval()
    device = next(model.parameters()).device
    return np.concatenate(
        _batched(
            lambda b: to_uint8(model.reconstruct(to_float(b, device)).float()), images, batch_size
        )
    )


@torch.inference_mode()
def encode(model: LatentAutoEncoder, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Codes (posterior means) of uint8 images, float32 (n, d)."""
    model.eval()
    device = next(model.parameters()).device
    parts = _batched(
        lambda b: model.encode(to_float(b, device)).float().cpu().numpy(), images, batch_size
    )
    return np.concatenate(parts)


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
    device = next(model.parameters()).device
    za = model.encode(to_float(start, device))
    zb = model.encode(to_float(end, device))
    t = torch.linspace(0, 1, steps, device=device).view(1, steps, 1)
    z = (1 - t) * za[:, None, :] + t * zb[:, None, :]  # (pairs, steps, d)
    images = to_uint8(model.decode(z.flatten(0, 1)).float())
    return images.reshape(len(start), steps, *images.shape[1:])
