"""waekit: generative auto-encoders regularised in latent space (VAE, WAE-MMD, WAE-GAN, ...)."""

from waekit.config import (
    WAE_SCALES,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    load_config,
    make_model_config,
    preset_names,
)
from waekit.errors import CheckpointError, ConfigError, DataError, TrainingDiverged, WaekitError
from waekit.models import MODELS, build_model, load_model, save_model

__version__ = "0.1.0"

__all__ = [
    "WAE_SCALES",
    "MODELS",
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "TrainingDiverged",
    "WaekitError",
    "build_model",
    "load_config",
    "load_model",
    "make_model_config",
    "preset_names",
    "save_model",
]
