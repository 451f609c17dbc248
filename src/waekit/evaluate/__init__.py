"""Evaluation: FID with the standard Inception features, sharpness, reconstruction error,
MMD and exact optimal-transport distances, the IW bound, and the run-folder evaluator.

``waekit.evaluate.fid`` is the FID module (its function is ``waekit.evaluate.fid.fid``).
"""

from waekit.evaluate.fid import (
    FID_PROTOCOL,
    InceptionFeatures,
    cached_real_statistics,
    feature_statistics,
    frechet_distance,
    inception_available,
)
from waekit.evaluate.metrics import (
    code_statistics,
    exact_ot_distance,
    fit_latent_gmm,
    importance_weighted_bound,
    sample_latent_gmm,
    sharpness,
)
from waekit.evaluate.run import evaluate_run

__all__ = [
    "FID_PROTOCOL",
    "InceptionFeatures",
    "cached_real_statistics",
    "code_statistics",
    "evaluate_run",
    "exact_ot_distance",
    "feature_statistics",
    "fit_latent_gmm",
    "frechet_distance",
    "importance_weighted_bound",
    "inception_available",
    "sample_latent_gmm",
    "sharpness",
]
