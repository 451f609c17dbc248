"""Evaluate a trained run folder: every number with its protocol, written to metrics.json.

:func:`evaluate_run` reads what training wrote (config.yaml, model.safetensors) and the
run's data set, and never reaches into the trainer. It passes the model over the test
images once (reconstructions, codes, prior samples, GMM-sampler samples), extracts the
Inception features of each image set once, and then runs the metric functions of
:data:`METRICS` in turn; each reads that shared :class:`Evaluation` and returns its entries.

Each entry of ``result["metrics"]`` is ``{"value": float, "n": ..., "split": ..., ...}``:
the value and how it was measured. Numbers that could not be computed are listed under
``result["skipped"]`` with the reason; none is ever made up.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from waekit import divergences as dv
from waekit.errors import ConfigError, DataError, WaekitError, brief
from waekit.evaluate import feature_metrics as fm
from waekit.evaluate import metrics as mx
from waekit.evaluate.fid import (
    FEATURE_DIM,
    InceptionFeatures,
    cached_real_features,
    frechet_distance_statistics,
    gaussian_statistics,
    inception_available,
)
from waekit.generate import batches, encode_batched, to_float, to_uint8

__all__ = [
    "evaluate_run",
    "read_metrics_json",
    "METRICS_JSON",
    "METRICS",
    "BETTER",
    "default_n",
    "better",
    "summary_table",
    "Evaluation",
    "Skip",
]

log = logging.getLogger(__name__)

METRICS_JSON = "metrics.json"
FORMAT = "waekit-metrics/1"
SHARPNESS = "variance of the Laplacian of the grey image (WAE paper), mean over images"

# Independent random streams, so that adding a metric never changes another's numbers.
_STREAM = {
    "test": 1,
    "prior": 2,
    "mmd": 3,
    "ot": 4,
    "train": 5,
    "gmm": 6,
    "iw": 7,
    "posterior": 8,
    "kid": 9,
    "fid_inf": 10,
    "bootstrap": 11,
}

#: The image sets compared with the test images, by the suffix of their metric names.
IMAGE_SETS = {
    "samples": "prior samples",
    "reconstructions": "test reconstructions",
    "gmm_samples": "GMM-sampler samples",
}


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAM[stream]])


def _stream_seed(seed: int, stream: str) -> int:
    state = np.random.SeedSequence([seed, _STREAM[stream]]).generate_state(1, dtype=np.uint64)
    return int(state[0]) & ((1 << 63) - 1)


def _torch_generator(seed: int, stream: str) -> torch.Generator:
    return torch.Generator().manual_seed(_stream_seed(seed, stream))


def default_n(device: torch.device) -> int:
    """Images per FID set when the caller gives none: the paper's 10,000 on CUDA; 1,000 on
    the CPU, where the Inception network runs at tens of images per second."""
    return 10_000 if device.type == "cuda" else 1_000


def read_metrics_json(run_dir: str | Path) -> dict[str, Any] | None:
    """RUN_DIR/metrics.json as written by :func:`evaluate_run`, or None when absent."""
    path = Path(run_dir) / METRICS_JSON
    if not path.is_file():
        return None
    return json.loads(path.read_text())


#: Which direction of a metric is better, by name prefix (the first match wins).
BETTER: tuple[tuple[str, str], ...] = (
    ("sharpness_test", "reference"),
    ("sharpness", "closer to real"),
    ("iw_bound", "higher"),
    ("precision", "higher"),
    ("recall", "higher"),
    ("density", "higher"),
    ("coverage", "higher"),
    ("fid", "lower"),
    ("kid", "lower"),
    ("recon_", "lower"),
    ("mmd", "lower"),
    ("ot_", "lower"),
)


def better(name: str) -> str:
    """'lower', 'higher', 'closer to real' or 'reference' for a metric name; '' if unknown."""
    return next((way for prefix, way in BETTER if name.startswith(prefix)), "")


def _value(x: float | torch.Tensor | np.floating | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# -- one pass of the model ---------------------------------------------------------------------
@dataclass
class Images:
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
        self.u8.append(to_uint8(x))
        kept = sum(h.shape[0] for h in self.head)
        if kept < self.keep:
            self.head.append(x[: self.keep - kept])

    def result(self) -> Images:
        shape = self.u8[0].shape[1:]
        head = np.concatenate(self.head) if self.head else np.zeros((0, *shape), np.float32)
        return Images(np.concatenate(self.u8), head, np.concatenate(self.sharp))


def _decode(model, codes: torch.Tensor, batch_size: int, keep: int) -> Images:
    device = next(model.parameters()).device
    out = _Collector(keep)
    for s in batches(codes.shape[0], batch_size):
        out.add(model.decode(codes[s].to(device=device, dtype=torch.float32)))
    return out.result()


@dataclass
class Reconstruction:
    codes: torch.Tensor  # (n, d) float64 posterior means
    cost: torch.Tensor  # (n,) the training cost per image
    mse: torch.Tensor  # (n,) squared error per pixel
    images: Images


def _reconstruct(model, real_u8: np.ndarray, batch_size: int, keep: int) -> Reconstruction:
    cfg = model.config
    device = next(model.parameters()).device
    codes, cost, mse = [], [], []
    out = _Collector(keep)
    for s in batches(real_u8.shape[0], batch_size):
        x = to_float(real_u8[s], device)
        z = model.encode(x)
        logits = model.decode_logits(z).float()
        recon = torch.sigmoid(logits)
        codes.append(z.double().cpu())
        cost.append(dv.reconstruction_cost(x, logits, cfg.recon, cfg.recon_scale).double().cpu())
        mse.append((x - recon).pow(2).flatten(1).mean(1).double().cpu())
        out.add(recon)
    return Reconstruction(torch.cat(codes), torch.cat(cost), torch.cat(mse), out.result())


def _gmm_images(
    run, model, n: int, seed: int, gmm_n: int, components: int, batch_size: int
) -> tuple[Images, dict[str, Any]]:
    """Decoded samples of a GMM fitted to up to ``gmm_n`` training codes."""
    train = np.asarray(run.dataset("train").images)
    m = min(gmm_n, train.shape[0])
    idx = np.sort(_rng(seed, "train").choice(train.shape[0], m, replace=False))
    codes = encode_batched(model, train[idx], batch_size).numpy()
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


# -- what the metric functions read --------------------------------------------------------------
class Skip(Exception):
    """Raised by a metric function that cannot run: ``name`` and the reason are recorded."""

    def __init__(self, name: str, reason: str):
        super().__init__(reason)
        self.name, self.reason = name, reason


@dataclass
class Options:
    """The protocol knobs of :func:`evaluate_run` (see its docstring)."""

    ot_n: int = 1000
    mmd_n: int = 1000
    iw_k: int = 50
    iw_n: int | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    prc_k: int = 3
    prc_k_dc: int = 5
    fid_inf_points: int = 5
    bootstrap: int = 10


@dataclass
class Evaluation:
    """The run, its n test images, and what one pass of the model and of Inception made of
    them; the input of every metric function."""

    model: Any
    device: torch.device
    split: str
    seed: int
    n: int
    batch_size: int
    real_u8: np.ndarray
    rec: Reconstruction
    samples: Images
    gmm: Images | None
    gmm_protocol: dict[str, Any]
    options: Options
    features: dict[str, np.ndarray] = field(default_factory=dict)  # 'test' and IMAGE_SETS
    fid_protocol: dict[str, Any] | None = None

    @property
    def subset(self) -> dict[str, Any]:
        return {"n": self.n, "split": self.split, "seed": self.seed}

    def image_sets(self) -> dict[str, Images]:
        sets = {"samples": self.samples, "reconstructions": self.rec.images}
        if self.gmm is not None:
            sets["gmm_samples"] = self.gmm
        return sets

    def feature_sets(self) -> dict[str, np.ndarray]:
        """Features of each generated set, when FID ran; else Skip."""
        if "test" not in self.features:
            raise Skip("inception", "needs the FID network's features (see 'fid')")
        return {k: v for k, v in self.features.items() if k != "test"}

    def with_gmm(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        if name.endswith("gmm_samples"):
            entry["gmm"] = self.gmm_protocol
        return entry


Entries = dict[str, dict[str, Any]]


# -- the metric functions ------------------------------------------------------------------------
def reconstruction_metrics(ev: Evaluation) -> Entries:
    """The training cost and the per-pixel squared error of test reconstructions."""
    cfg = ev.model.config
    cost_name = (
        f"{cfg.recon_scale:g} x squared L2 summed over pixels"
        if cfg.recon == "l2"
        else "binary cross-entropy summed over pixels"
    )
    return {
        "recon_cost": {
            "value": _value(ev.rec.cost.mean()),
            **ev.subset,
            "description": f"training cost per image: {cost_name}",
        },
        "recon_mse": {
            "value": _value(ev.rec.mse.mean()),
            **ev.subset,
            "description": "mean squared error per pixel, pixels in [0, 1]",
        },
    }


def sharpness_metrics(ev: Evaluation) -> Entries:
    """The WAE paper's sharpness of test images and of each generated set."""
    sets = {"test": mx.sharpness_per_image(ev.real_u8)}
    sets.update({k: v.sharpness for k, v in ev.image_sets().items()})
    return {
        f"sharpness_{what}": ev.with_gmm(
            what, {"value": _value(values.mean()), **ev.subset, "description": SHARPNESS}
        )
        for what, values in sets.items()
    }


def _posterior_samples(ev: Evaluation, m: int, stream: str) -> torch.Tensor:
    """m codes of Q_Z: z ~ q(z|x) for the first m test images (float64, CPU)."""
    return encode_batched(
        ev.model,
        ev.real_u8[:m],
        ev.batch_size,
        sample=True,
        generator=_torch_generator(ev.seed, stream),
    )


def code_metrics(ev: Evaluation) -> Entries:
    """MMD^2 and exact W_2 between test codes and prior draws: on posterior means, and for
    Gaussian encoders on codes sampled from q(z|x), i.e. from the aggregate posterior Q_Z
    that the WAE penalty is defined on (Tolstikhin et al. 2018, eq. 4)."""
    cfg = ev.model.config
    out: Entries = {}
    mmd_m, ot_m = min(ev.options.mmd_n, ev.n), min(ev.options.ot_n, ev.n)
    kinds = {"": (ev.rec.codes, "posterior means (mu)")}
    if cfg.gaussian:
        kinds["_sampled"] = (
            _posterior_samples(ev, max(mmd_m, ot_m), "posterior"),
            "codes sampled from q(z|x), i.e. draws of the aggregate posterior Q_Z",
        )
    prior_mmd = ev.model.sample_prior(mmd_m, _torch_generator(ev.seed, "mmd")).double().cpu()
    prior_ot = ev.model.sample_prior(ot_m, _torch_generator(ev.seed, "ot")).double().cpu()
    for suffix, (codes, what) in kinds.items():
        mmd = dv.mmd2(codes[:mmd_m], prior_mmd, cfg.kernel, cfg.scales, cfg.prior_var)
        out[f"mmd2_codes_prior{suffix}"] = {
            "value": _value(mmd),
            "n": mmd_m,
            "split": ev.split,
            "seed": ev.seed,
            "codes": what,
            "description": f"unbiased MMD^2, {cfg.kernel} kernel at scales {list(cfg.scales)} "
            f"x 2 d prior_var, test {what} vs N(0, {cfg.prior_var:g} I) draws",
        }
        if ot_m >= 2:
            out[f"ot_codes_prior{suffix}"] = {
                "value": _value(mx.exact_ot_distance(codes[:ot_m], prior_ot)),
                "n": ot_m,
                "split": ev.split,
                "seed": ev.seed,
                "p": 2,
                "codes": what,
                "description": f"exact W_2 between test {what} and N(0, {cfg.prior_var:g} I) draws",
            }
    return out


def image_ot_metrics(ev: Evaluation) -> Entries:
    """Exact W_2 between generated and test images as vectors of pixels."""
    ot_m = min(ev.options.ot_n, ev.n)
    if ot_m < 2:
        raise Skip("ot_samples_test", f"exact OT needs >= 2 images, n = {ev.n}")
    protocol = {"n": ot_m, "split": ev.split, "seed": ev.seed, "p": 2}
    real_head = ev.real_u8[:ot_m].astype(np.float64) / 255.0
    return {
        "ot_samples_test": {
            "value": _value(mx.exact_ot_distance(ev.samples.head, real_head)),
            **protocol,
            "description": "exact W_2 between prior samples and test images, "
            "images as vectors of pixels in [0, 1] (POT emd2)",
        },
        "ot_reconstructions_test": {
            "value": _value(mx.exact_ot_distance(ev.rec.images.head, real_head)),
            **protocol,
            "description": "exact W_2 between test reconstructions and test images",
        },
    }


def iw_bound_metrics(ev: Evaluation) -> Entries:
    """The importance-weighted bound on log p(x) (Gaussian encoders only)."""
    if not ev.model.config.gaussian:
        raise Skip("iw_bound", "deterministic encoder: no q(z|x), hence no likelihood bound")
    o = ev.options
    m = min(o.iw_n or (1000 if ev.device.type == "cuda" else 100), ev.n)
    gen = _torch_generator(ev.seed, "iw")
    bounds = np.concatenate(
        [
            mx.importance_weighted_bound(ev.model, to_float(ev.real_u8[s], ev.device), o.iw_k, gen)
            for s in batches(m, ev.batch_size)
        ]
    )
    return {
        "iw_bound": {
            "value": _value(bounds.mean()),
            "k": o.iw_k,
            "n": m,
            "split": ev.split,
            "seed": ev.seed,
            "stderr": _value(bounds.std(ddof=1) / math.sqrt(m)) if m > 1 else None,
            "description": "IWAE lower bound on log p(x), nats per image",
        }
    }


def fid_metrics(ev: Evaluation) -> Entries:
    """FID of each generated set against the test images, with a bootstrap interval."""
    feats = ev.feature_sets()
    real = gaussian_statistics(ev.features["test"])
    network = ev.fid_protocol["network"] if ev.fid_protocol else None
    out: Entries = {}
    for what, fake in feats.items():
        boot = fm.fid_bootstrap(
            ev.features["test"],
            fake,
            resamples=ev.options.bootstrap,
            seed=_stream_seed(ev.seed, "bootstrap"),
        )
        entry = {
            "value": _value(frechet_distance_statistics(gaussian_statistics(fake), real)),
            **ev.subset,
            "network": network,
            "interval": [boot["low"], boot["high"]],
            "interval_protocol": f"{boot['level']:.0%} percentile bootstrap, both sets "
            f"resampled with replacement, {boot['resamples']} resamples; a resample repeats "
            "points, which raises FID's small-N bias, so the interval can sit above the value",
            "description": f"{IMAGE_SETS[what]} vs test images",
        }
        out[f"fid_{what}"] = ev.with_gmm(what, entry)
    return out


def fid_inf_metrics(ev: Evaluation) -> Entries:
    """FID extrapolated to N = infinity from FID at several N of each generated set."""
    feats = ev.feature_sets()
    if ev.n < 10:
        raise Skip("fid_inf", f"FID_inf needs several N <= n, n = {ev.n} is too small")
    out: Entries = {}
    for what, fake in feats.items():
        got = fm.fid_infinity(
            ev.features["test"],
            fake,
            points=ev.options.fid_inf_points,
            seed=_stream_seed(ev.seed, "fid_inf"),
        )
        out[f"fid_inf_{what}"] = ev.with_gmm(
            what,
            {
                "value": _value(got["value"]),
                "residual": got["residual"],
                "slope": got["slope"],
                "fit_n": got["n"],
                "fit_fid": got["fid"],
                **ev.subset,
                "description": f"FID of {IMAGE_SETS[what]} extrapolated to N = infinity: "
                "least squares FID(N) = FID_inf + slope / N over random N-subsets against "
                "all test features (Chong and Forsyth 2020); residual = RMS of the fit",
            },
        )
    return out


def kid_metrics(ev: Evaluation) -> Entries:
    """KID (unbiased polynomial MMD^2 of Inception features), mean and sd over subsets."""
    feats = ev.feature_sets()
    o = ev.options
    # subsets of at most half the set, so that they differ from one another
    size = max(2, min(o.kid_subset_size, ev.n // 2))
    out: Entries = {}
    for what, fake in feats.items():
        got = fm.kid(
            ev.features["test"],
            fake,
            subsets=o.kid_subsets,
            subset_size=size,
            seed=_stream_seed(ev.seed, "kid"),
        )
        out[f"kid_{what}"] = ev.with_gmm(
            what,
            {
                "value": _value(got["value"]),
                "sd": _value(got["sd"]),
                "subsets": got["subsets"],
                "subset_size": got["subset_size"],
                **ev.subset,
                "description": f"KID of {IMAGE_SETS[what]} vs test images: unbiased MMD^2, "
                "kernel (x.y / 2048 + 1)^3 on pool features, mean and sd over subsets "
                "(Binkowski et al. 2018)",
            },
        )
    return out


def precision_recall_metrics(ev: Evaluation) -> Entries:
    """k-NN precision and recall, density and coverage of each generated set."""
    feats = ev.feature_sets()
    o = ev.options
    if ev.n <= max(o.prc_k, o.prc_k_dc):
        raise Skip("precision_recall", f"k-NN balls need more than k images, n = {ev.n}")
    out: Entries = {}
    meaning = {
        "precision": "share of generated images inside the test images' k-NN manifold "
        "(Kynkaanniemi et al. 2019)",
        "recall": "share of test images inside the generated images' k-NN manifold",
        "density": "mean count of test k-NN balls holding a generated image, over k "
        "(Naeem et al. 2020)",
        "coverage": "share of test k-NN balls holding at least one generated image",
    }
    for what, fake in feats.items():
        got = fm.precision_recall(ev.features["test"], fake, k=o.prc_k, k_dc=o.prc_k_dc)
        for key, text in meaning.items():
            k = o.prc_k if key in ("precision", "recall") else o.prc_k_dc
            out[f"{key}_{what}"] = ev.with_gmm(
                what,
                {
                    "value": got[key],
                    "k": k,
                    **ev.subset,
                    "description": f"{IMAGE_SETS[what]}: {text}, Inception pool features",
                },
            )
    return out


#: The metric functions, in order: each reads an :class:`Evaluation` and returns entries
#: (or raises :class:`Skip`). Feature-based ones reuse the features extracted once.
METRICS: list[Callable[[Evaluation], Entries]] = [
    reconstruction_metrics,
    sharpness_metrics,
    code_metrics,
    image_ot_metrics,
    iw_bound_metrics,
    fid_metrics,
    fid_inf_metrics,
    kid_metrics,
    precision_recall_metrics,
]


# -- the evaluator -----------------------------------------------------------------------------
@contextmanager
def _stage(name: str, total: int, show: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar for one stage, counting images (tqdm shows images/s)."""
    from tqdm import tqdm

    with tqdm(total=total, desc=f"{name:<10}", unit="img", disable=not show, leave=True) as bar:
        yield bar.update


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
    progress: bool = False,
    kid_subsets: int = 100,
    bootstrap: int = 10,
    fid_sets: Sequence[str] = tuple(IMAGE_SETS),
) -> dict[str, Any]:
    """Evaluate the run in ``run_dir`` on its test split; write RUN_DIR/metrics.json.

    n: images per FID set and for the image metrics (default :func:`default_n`, capped by
    the test-set size; the cap is recorded in ``result["warnings"]``): n random test images
    (``seed``) against n prior samples, their n reconstructions and n GMM-sampler samples.
    ot_n, mmd_n: subset sizes of the exact OT distances and of MMD^2 (capped by n). gmm_n:
    training codes the GMM is fitted to. iw_k, iw_n: importance samples and test images of
    the IW bound (Gaussian encoders; iw_n defaults to 1,000 on CUDA and 100 on the CPU).
    With fid=False, or without the FID network, FID, FID_inf, KID and precision/recall are
    skipped and the reason recorded. fid_sets: the generated sets that go through Inception
    (of ``samples``, ``reconstructions``, ``gmm_samples``; each costs n images of Inception,
    minutes on a CPU); the feature metrics cover these sets only. kid_subsets: KID's
    subsets (of min(1000, n / 2) points); bootstrap: resamples of FID's interval.
    ``progress`` shows a bar per stage.
    Deterministic given ``seed``.
    """
    from waekit.io import atomic_write_text
    from waekit.run import RunLock, load_run

    fid_sets = tuple(dict.fromkeys(fid_sets))
    unknown = [s for s in fid_sets if s not in IMAGE_SETS]
    if unknown or not fid_sets:
        raise ConfigError(
            f"fid_sets = {brief(list(fid_sets))}: choose one or more of "
            f"{', '.join(IMAGE_SETS)}, e.g. --fid-sets samples"
        )
    started = time.time()
    run = load_run(run_dir, device=device)
    # one writer of metrics.json at a time, and none while the run is being trained
    lock = RunLock(Path(run_dir), "waekit evaluate") if write else nullcontext()
    with lock:
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
        description = getattr(test, "description", "") or data_name
        n_requested = n
        n = min(n or default_n(dev), images.shape[0])
        if n < 2:
            raise DataError(f"the test split has {images.shape[0]} images; evaluation needs >= 2")
        warnings_: list[str] = []
        if n_requested is not None and n_requested > n:
            warnings_.append(
                f"n = {n_requested} was asked for but the {description} {split} split has only "
                f"{images.shape[0]} images: every metric uses n = {n}"
            )
        note = getattr(test, "note", None)
        if note:
            warnings_.append(note)
        for text in warnings_:
            log.warning(text)
        idx = np.sort(_rng(seed, "test").choice(images.shape[0], size=n, replace=False))
        real_u8 = np.ascontiguousarray(images[idx])
        options = Options(
            ot_n=ot_n,
            mmd_n=mmd_n,
            iw_k=iw_k,
            iw_n=iw_n,
            kid_subsets=kid_subsets,
            bootstrap=bootstrap,
        )

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
            "data": {
                "name": data_name,
                "description": description,
                "split": split,
                "size": int(images.shape[0]),
            },
            "n": n,
            "n_requested": n_requested,
            "seed": seed,
            "device": str(dev),
            "codes": "posterior means (the encoder's mu) of the test images; metrics named "
            "*_sampled use codes drawn from q(z|x) (the aggregate posterior Q_Z)",
            "fid_protocol": None,
            "warnings": warnings_,
            "metrics": {},
            "skipped": {},
        }

        ok, reason = inception_available() if fid else (False, "disabled (fid=False)")
        extractor = InceptionFeatures(dev) if ok else None

        def features(name: str, u8: np.ndarray, real: bool = False) -> None:
            if extractor is None or not (real or name in fid_sets):
                return
            with _stage(name, n, progress) as update:
                if real:
                    key = f"{data_name}-{split}"
                    ev.features["test"] = cached_real_features(
                        key, u8, extractor, cache_dir=cache_dir, batch_size=bs, on_batch=update
                    )
                else:
                    ev.features[name] = extractor.features(u8, bs, on_batch=update)

        with torch.inference_mode():
            ot_m = min(ot_n, n)
            log.info("reconstructing %d test images", n)
            rec = _reconstruct(model, real_u8, bs, keep=ot_m)
            log.info("decoding %d prior samples", n)
            samples = _decode(
                model, model.sample_prior(n, _torch_generator(seed, "prior")), bs, ot_m
            )
            ev = Evaluation(
                model=model,
                device=dev,
                split=split,
                seed=seed,
                n=n,
                batch_size=bs,
                real_u8=real_u8,
                rec=rec,
                samples=samples,
                gmm=None,
                gmm_protocol={},
                options=options,
            )
            features("real stats", real_u8, real=True)
            features("samples", samples.uint8)
            features("reconstructions", rec.images.uint8)
            try:
                ev.gmm, ev.gmm_protocol = _gmm_images(
                    run, model, n, seed, gmm_n, gmm_components, bs
                )
                features("gmm_samples", ev.gmm.uint8)
            except (WaekitError, OSError, ValueError, KeyError) as exc:
                result["skipped"]["gmm"] = f"the GMM sampler needs the train split: {exc}"

            if extractor is None:
                result["skipped"]["fid"] = reason
            else:
                protocol = {
                    **extractor.protocol,
                    "n": n,
                    "split": split,
                    "seed": seed,
                    "reference": f"{n} random {description} {split} images",
                }
                if n < FEATURE_DIM:
                    protocol["note"] = (
                        f"n = {n} < {FEATURE_DIM}: the covariances are singular (handled exactly); "
                        "FID is biased upward at small n, so compare numbers at equal n only, or "
                        "compare FID_inf and KID, which are not biased so"
                    )
                protocol["sets"] = list(fid_sets)
                result["fid_protocol"] = ev.fid_protocol = protocol

            result["code_statistics"] = {
                **mx.code_statistics(rec.codes),
                "split": split,
                "seed": seed,
            }
            for metric in METRICS:
                try:
                    result["metrics"].update(metric(ev))
                except Skip as skip:
                    if skip.name != "inception":  # already recorded as 'fid'
                        result["skipped"][skip.name] = skip.reason

        result["seconds"] = round(time.time() - started, 2)
        if write:
            atomic_write_text(Path(run_dir) / METRICS_JSON, json.dumps(result, indent=2) + "\n")
    return result


def _format(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def summary_table(result: dict[str, Any]) -> str:
    """The metrics of an :func:`evaluate_run` result as a short text table: metric, value
    (with the sd of KID, the FID interval and the fit residual of FID_inf), better, n;
    then the skipped metrics with their reasons."""
    rows = [("metric", "value", "better", "n")]
    for name, entry in result.get("metrics", {}).items():
        value = _format(entry.get("value"))
        if entry.get("sd") is not None:
            value += f" ± {_format(entry['sd'])}"
        if entry.get("interval"):
            low, high = entry["interval"]
            value += f" [{_format(low)}, {_format(high)}]"
        if entry.get("residual") is not None:
            value += f" (fit residual {_format(entry['residual'])})"
        rows.append((name, value, better(name), str(entry.get("n", ""))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    data = result.get("data", {})
    head = (
        f"{result.get('model', {}).get('name')} on {data.get('description') or data.get('name')} "
        f"{data.get('split')}: n = {result.get('n')}, seed {result.get('seed')}, "
        f"{result.get('seconds')} s on {result.get('device')}"
    )
    skipped = [f"skipped {k}: {v}" for k, v in result.get("skipped", {}).items()]
    return "\n".join([head, *lines, *skipped])
