"""Evaluate a trained run folder: every number with its protocol, written to metrics.json.

:func:`evaluate_run` reads what training wrote (config.yaml, model.safetensors) and the
run's data set, and never reaches into the trainer. The numbers follow the WAE paper's
evaluation (FID of random samples and of test reconstructions, sharpness) plus
reconstruction error, MMD^2 and exact optimal-transport distances between codes and the
prior, the ex-post GMM sampler, and, for Gaussian encoders, the importance-weighted bound.

Each entry of ``result["metrics"]`` is ``{"value": float, "n": ..., "split": ..., ...}``:
the value and how it was measured. Numbers that could not be computed are listed under
``result["skipped"]`` with the reason; none is ever made up.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from waekit import divergences as dv
from waekit.errors import DataError, WaekitError
from waekit.evaluate import metrics as mx
from waekit.evaluate.fid import (
    FEATURE_DIM,
    InceptionFeatures,
    cached_real_statistics,
    frechet_distance_statistics,
    gaussian_statistics,
    inception_available,
)
from waekit.generate import to_float

__all__ = ["evaluate_run", "read_metrics_json", "METRICS_JSON", "default_n"]

log = logging.getLogger(__name__)

METRICS_JSON = "metrics.json"
FORMAT = "waekit-metrics/1"
SHARPNESS = "variance of the Laplacian of the grey image (WAE paper), mean over images"

# Independent random streams, so that adding a metric never changes another's numbers.
_STREAM = {"test": 1, "prior": 2, "mmd": 3, "ot": 4, "train": 5, "gmm": 6, "iw": 7}


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAM[stream]])


def _torch_generator(seed: int, stream: str) -> torch.Generator:
    state = np.random.SeedSequence([seed, _STREAM[stream]]).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0]) & ((1 << 63) - 1))


def default_n(device: torch.device) -> int:
    """Images per FID set when the caller gives none: the paper's 10,000 on CUDA; 1,000 on
    the CPU, where the Inception network runs at a few images per second."""
    return 10_000 if device.type == "cuda" else 1_000


def read_metrics_json(run_dir: str | Path) -> dict[str, Any] | None:
    """RUN_DIR/metrics.json as written by :func:`evaluate_run`, or None when absent."""
    path = Path(run_dir) / METRICS_JSON
    if not path.is_file():
        return None
    return json.loads(path.read_text())


# -- batched model passes ---------------------------------------------------------------------
@dataclass
class _Images:
    """Images from the model: uint8 for FID, floats for the first few (OT), and the
    per-image sharpness computed on the float images."""

    uint8: np.ndarray  # (n, C, H, W)
    head: np.ndarray  # (k, C, H, W) float32 in [0, 1], the first k images
    sharpness: np.ndarray  # (n,)


class _Collector:
    def __init__(self, keep: int):
        self.keep = keep
        self.u8: list[np.ndarray] = []
        self.head: list[np.ndarray] = []
        self.sharp: list[np.ndarray] = []

    def add(self, images: torch.Tensor) -> None:
        x = images.float().cpu().numpy()
        self.sharp.append(mx.sharpness_per_image(x))
        self.u8.append(np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8))
        kept = sum(h.shape[0] for h in self.head)
        if kept < self.keep:
            self.head.append(x[: self.keep - kept])

    def result(self) -> _Images:
        shape = self.u8[0].shape[1:]
        head = np.concatenate(self.head) if self.head else np.zeros((0, *shape), np.float32)
        return _Images(np.concatenate(self.u8), head, np.concatenate(self.sharp))


def _decode(model, codes: torch.Tensor, batch_size: int, keep: int) -> _Images:
    device = next(model.parameters()).device
    out = _Collector(keep)
    for s in range(0, codes.shape[0], batch_size):
        out.add(model.decode(codes[s : s + batch_size].to(device=device, dtype=torch.float32)))
    return out.result()


def _encode(model, images_u8: np.ndarray, batch_size: int) -> torch.Tensor:
    """Posterior means (n, d) on the CPU in float64."""
    device = next(model.parameters()).device
    codes = [
        model.encode(to_float(images_u8[s : s + batch_size], device)).double().cpu()
        for s in range(0, images_u8.shape[0], batch_size)
    ]
    return torch.cat(codes)


@dataclass
class _Reconstruction:
    codes: torch.Tensor  # (n, d) float64 posterior means
    cost: torch.Tensor  # (n,) the training cost per image
    mse: torch.Tensor  # (n,) squared error per pixel
    images: _Images


def _reconstruct(model, real_u8: np.ndarray, batch_size: int, keep: int) -> _Reconstruction:
    cfg = model.config
    device = next(model.parameters()).device
    codes, cost, mse = [], [], []
    out = _Collector(keep)
    for s in range(0, real_u8.shape[0], batch_size):
        x = to_float(real_u8[s : s + batch_size], device)
        z = model.encode(x)
        logits = model.decode_logits(z).float()
        recon = torch.sigmoid(logits)
        codes.append(z.double().cpu())
        cost.append(dv.reconstruction_cost(x, logits, cfg.recon, cfg.recon_scale).double().cpu())
        mse.append((x - recon).pow(2).flatten(1).mean(1).double().cpu())
        out.add(recon)
    return _Reconstruction(torch.cat(codes), torch.cat(cost), torch.cat(mse), out.result())


def _gmm_images(
    run, model, n: int, seed: int, gmm_n: int, components: int, batch_size: int
) -> tuple[_Images, dict[str, Any]]:
    """Decoded samples of a GMM fitted to up to ``gmm_n`` training codes."""
    train = np.asarray(run.dataset("train").images)
    m = min(gmm_n, train.shape[0])
    idx = np.sort(_rng(seed, "train").choice(train.shape[0], m, replace=False))
    codes = _encode(model, train[idx], batch_size).numpy()
    # at least 2 (d + 1) codes per component on average, so full covariances are well posed
    k = max(1, min(components, m // (2 * model.config.latent_dim + 2)))
    gmm = mx.fit_latent_gmm(codes, n_components=k, seed=seed)
    z = torch.from_numpy(mx.sample_latent_gmm(gmm, n, seed=seed))
    protocol = {
        "fitted_on": f"{m} posterior means of train images",
        "components": k,
        "covariance": "full",
        "seed": seed,
    }
    return _decode(model, z, batch_size, keep=0), protocol


def _value(x: float | torch.Tensor | np.floating) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


# -- the evaluator -----------------------------------------------------------------------------
def evaluate_run(
    run_dir: str | Path,
    n: int | None = None,
    device: str = "auto",
    seed: int = 0,
    fid: bool = True,
    ot_n: int = 1000,
    batch_size: int | None = None,
    mmd_n: int = 1000,
    gmm_n: int = 10_000,
    gmm_components: int = 10,
    iw_k: int = 50,
    iw_n: int | None = None,
    cache_dir: str | Path | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Evaluate the run in ``run_dir`` on its test split; write RUN_DIR/metrics.json.

    n: images per FID set and for the image metrics (default :func:`default_n`, capped by
    the test-set size): n random test images (``seed``) against n prior samples, their n
    reconstructions and n GMM-sampler samples. ot_n, mmd_n: subset sizes of the exact OT
    distances and of MMD^2 (capped by n). gmm_n: training codes the GMM is fitted to.
    iw_k, iw_n: importance samples and test images of the IW bound (Gaussian encoders;
    iw_n defaults to 1,000 on CUDA and 100 on the CPU). With fid=False, or without the FID
    network, FID is skipped and the reason recorded. Deterministic given ``seed``.
    """
    from waekit.io import atomic_write_text
    from waekit.run import load_run

    started = time.time()
    run = load_run(run_dir, device=device)
    model = run.model.eval()
    dev, mcfg = run.device, run.model.config
    data_name = run.config.data.name
    bs = batch_size or (200 if dev.type == "cuda" else 50)

    test = run.dataset()
    images = np.asarray(test.images)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(model.image_shape):
        raise DataError(
            f"the test images have shape {tuple(images.shape[1:])} but the model was trained "
            f"on {tuple(model.image_shape)}; evaluate with the run's own data set"
        )
    split = getattr(test, "split", None) or run.config.data.test_split
    n_requested = n
    n = min(n or default_n(dev), images.shape[0])
    if n < 2:
        raise DataError(f"the test split has {images.shape[0]} images; evaluation needs >= 2")
    idx = np.sort(_rng(seed, "test").choice(images.shape[0], size=n, replace=False))
    real_u8 = np.ascontiguousarray(images[idx])
    ot_m, mmd_m = min(ot_n, n), min(mmd_n, n)

    result: dict[str, Any] = {
        "format": FORMAT,
        "run": str(Path(run_dir)),
        "model": {
            "name": mcfg.name,
            "latent_dim": mcfg.latent_dim,
            "encoder": mcfg.encoder,
            "recon": mcfg.recon,
            "prior_var": mcfg.prior_var,
        },
        "data": {"name": data_name, "split": split, "size": int(images.shape[0])},
        "n": n,
        "n_requested": n_requested,
        "seed": seed,
        "device": str(dev),
        "codes": "posterior means (the encoder's mu) of the test images",
        "fid_protocol": None,
        "metrics": {},
        "skipped": {},
    }
    out: dict[str, dict[str, Any]] = result["metrics"]
    skipped: dict[str, str] = result["skipped"]
    subset = {"n": n, "split": split, "seed": seed}

    with torch.inference_mode():
        log.info("reconstructing %d test images", n)
        rec = _reconstruct(model, real_u8, bs, keep=ot_m)
        log.info("decoding %d prior samples", n)
        samples = _decode(model, model.sample_prior(n, _torch_generator(seed, "prior")), bs, ot_m)
        try:
            gmm, gmm_protocol = _gmm_images(run, model, n, seed, gmm_n, gmm_components, bs)
        except (WaekitError, OSError, ValueError, KeyError) as exc:
            gmm, gmm_protocol = None, {}
            skipped["gmm"] = f"the GMM sampler needs the train split: {exc}"

        cost_name = (
            f"{mcfg.recon_scale:g} x squared L2 summed over pixels"
            if mcfg.recon == "l2"
            else "binary cross-entropy summed over pixels"
        )
        out["recon_cost"] = {
            "value": _value(rec.cost.mean()),
            **subset,
            "description": f"training cost per image: {cost_name}",
        }
        out["recon_mse"] = {
            "value": _value(rec.mse.mean()),
            **subset,
            "description": "mean squared error per pixel, pixels in [0, 1]",
        }

        sharp = {
            "test": mx.sharpness_per_image(real_u8),
            "samples": samples.sharpness,
            "reconstructions": rec.images.sharpness,
        }
        if gmm is not None:
            sharp["gmm_samples"] = gmm.sharpness
        for what, values in sharp.items():
            out[f"sharpness_{what}"] = {
                "value": _value(values.mean()),
                **subset,
                "description": SHARPNESS,
            }

        result["code_statistics"] = {**mx.code_statistics(rec.codes), "split": split, "seed": seed}
        prior = model.sample_prior(mmd_m, _torch_generator(seed, "mmd")).double().cpu()
        mmd = dv.mmd2(rec.codes[:mmd_m], prior, mcfg.kernel, mcfg.scales, mcfg.prior_var)
        out["mmd2_codes_prior"] = {
            "value": _value(mmd),
            "n": mmd_m,
            "split": split,
            "seed": seed,
            "description": f"unbiased MMD^2, {mcfg.kernel} kernel at scales {list(mcfg.scales)} "
            f"x 2 d prior_var, test codes vs N(0, {mcfg.prior_var:g} I) draws",
        }

        if ot_m >= 2:
            log.info("exact OT distances on %d points", ot_m)
            ot = {"n": ot_m, "split": split, "seed": seed, "p": 2}
            real_head = real_u8[:ot_m].astype(np.float64) / 255.0
            w_samples = mx.exact_ot_distance(samples.head, real_head)
            out["ot_samples_test"] = {
                "value": _value(w_samples),
                **ot,
                "description": "exact W_2 between prior samples and test images, "
                "images as vectors of pixels in [0, 1] (POT emd2)",
            }
            w_recon = mx.exact_ot_distance(rec.images.head, real_head)
            out["ot_reconstructions_test"] = {
                "value": _value(w_recon),
                **ot,
                "description": "exact W_2 between test reconstructions and test images",
            }
            prior = model.sample_prior(ot_m, _torch_generator(seed, "ot")).double().cpu()
            out["ot_codes_prior"] = {
                "value": _value(mx.exact_ot_distance(rec.codes[:ot_m], prior)),
                **ot,
                "description": f"exact W_2 between test codes and N(0, {mcfg.prior_var:g} I) draws",
            }

        if mcfg.gaussian:
            m_iw = min(iw_n or (1000 if dev.type == "cuda" else 100), n)
            log.info("IW bound, k=%d on %d images", iw_k, m_iw)
            gen = _torch_generator(seed, "iw")
            bounds = np.concatenate(
                [
                    mx.importance_weighted_bound(
                        model, to_float(real_u8[s : min(s + bs, m_iw)], dev), iw_k, gen
                    )
                    for s in range(0, m_iw, bs)
                ]
            )
            out["iw_bound"] = {
                "value": _value(bounds.mean()),
                "k": iw_k,
                "n": m_iw,
                "split": split,
                "seed": seed,
                "stderr": _value(bounds.std(ddof=1) / math.sqrt(m_iw)) if m_iw > 1 else None,
                "description": "IWAE lower bound on log p(x), nats per image",
            }
        else:
            skipped["iw_bound"] = "deterministic encoder: no q(z|x), hence no likelihood bound"

    ok, reason = inception_available() if fid else (False, "disabled (fid=False)")
    if not ok:
        skipped["fid"] = reason
    else:
        extractor = InceptionFeatures(dev)
        protocol = {
            **extractor.protocol,
            "n": n,
            "split": split,
            "seed": seed,
            "reference": f"{n} random {data_name} {split} images",
        }
        if n < FEATURE_DIM:
            protocol["note"] = (
                f"n = {n} < {FEATURE_DIM}: the covariances are singular (handled exactly); "
                "FID is biased upward at small n, so compare numbers at equal n only"
            )
        result["fid_protocol"] = protocol
        log.info("FID: Inception features of %d test images", n)
        real = cached_real_statistics(
            f"{data_name}-{split}", real_u8, extractor, cache_dir=cache_dir, batch_size=bs
        )
        sets = {
            "fid_samples": (samples, "prior samples vs test images"),
            "fid_reconstructions": (rec.images, "test reconstructions vs test images"),
        }
        if gmm is not None:
            sets["fid_gmm_samples"] = (gmm, "GMM-sampler samples vs test images")
        for name, (fake, what) in sets.items():
            log.info("FID: %s", what)
            stats = gaussian_statistics(extractor.features(fake.uint8, bs))
            out[name] = {
                "value": _value(frechet_distance_statistics(stats, real)),
                **subset,
                "network": protocol["network"],
                "description": what,
            }

    if gmm is not None:
        for name in ("sharpness_gmm_samples", "fid_gmm_samples"):
            if name in out:
                out[name]["gmm"] = gmm_protocol
    result["seconds"] = round(time.time() - started, 2)
    if write:
        atomic_write_text(Path(run_dir) / METRICS_JSON, json.dumps(result, indent=2) + "\n")
    return result
