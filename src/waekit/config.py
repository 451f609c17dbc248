"""Frozen configuration dataclasses, YAML loading, dotted ``key=value`` overrides, presets.

A run is described by one :class:`RunConfig` with sections ``model``, ``data``, ``train``
and ``distributed``. Every key has a type, checked in one place (:func:`_coerce`): a choice
is a ``Literal``, a number must be finite and in range; unknown keys and values of the wrong
type raise :class:`~waekit.errors.ConfigError` naming the key, with the value quoted through
:func:`~waekit.errors.brief`. Model hyper-parameters whose paper default depends on the model
(``lam`` is 10 for WAE-MMD but 1 for WAE-GAN) come from the model table
(:data:`waekit.models.MODELS`) when a model config is made, so a saved config is complete; a
field the model does not read is refused when it is set to anything but its default.
:func:`resolve_config` is the one place that picks a run's config and applies ``--set``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from waekit.divergences import WAE_SCALES, Kernel, ReconCost
from waekit.errors import ConfigError, brief

if TYPE_CHECKING:
    from waekit.models import ModelSpec

Net = Literal["mlp", "conv", "small"]
EncoderKind = Literal["deterministic", "gaussian"]
InfoVAEDivergence = Literal["mmd", "gan"]
Schedule = Literal["wae", "cosine", "constant"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Switch = Literal["auto", "on", "off"]

#: Bounds that keep a typo from allocating terabytes or overflowing a seed.
MAX_LATENT_DIM = 4096
MAX_WIDTH = 65536
MAX_IMAGE_SIZE = 4096
MAX_EPOCHS = 1e6
MAX_SEED = 2**32 - 1
_MAX_INT = 2**63 - 1  # any integer key (int64): beyond this a value overflows, it is no setting


def _require(ok: bool, key: str, value: Any, fix: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={brief(value)} is invalid: {fix}")


def _model_spec(name: Any) -> ModelSpec:
    # The model table holds the classes, so it lives in models.py, which imports this module.
    from waekit.models import model_spec

    return model_spec(name)


def _check_types(config: Any, section: str) -> None:
    """Check the choices (``Literal`` fields) of a config, also one made directly, through
    :func:`_coerce`; a config built from YAML has been through it already."""
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        if typing.get_origin(hints[f.name]) is Literal:
            _coerce(getattr(config, f.name), hints[f.name], f"{section}.{f.name}")


@dataclass(frozen=True)
class ModelConfig:
    """One latent-regularised auto-encoder. Fields are the papers' hyper-parameters."""

    name: str = "wae-mmd"
    latent_dim: int = 8
    net: Net = "conv"
    encoder: EncoderKind = "deterministic"
    recon: ReconCost = "l2"
    recon_scale: float = 1.0
    prior_var: float = 1.0
    beta: float = 1.0
    lam: float = 10.0
    alpha: float = 0.0
    kernel: Kernel = "imq"
    scales: tuple[float, ...] = WAE_SCALES
    divergence: InfoVAEDivergence = "mmd"
    n_projections: int = 50
    batch_norm: bool = True
    #: Batch norm in the decoder; None: as ``batch_norm`` (which then covers both nets).
    decoder_batch_norm: bool | None = None
    mlp_hidden: tuple[int, ...] = (512, 512)
    critic_hidden: int = 512
    critic_layers: int = 4
    critic_log_prior: bool = False

    def __post_init__(self) -> None:
        _check_types(self, "model")
        spec = _model_spec(self.name)
        _require(
            1 <= self.latent_dim <= MAX_LATENT_DIM,
            "model.latent_dim",
            self.latent_dim,
            f"must be between 1 and {MAX_LATENT_DIM}, e.g. --set model.latent_dim=8",
        )
        if self.encoder not in spec.encoders:
            kinds = " or ".join(spec.encoders)
            raise ConfigError(
                f"model.encoder={brief(self.encoder)} is invalid: {self.name} needs a {kinds} "
                f"encoder; --set model.encoder={spec.encoders[0]}"
            )
        _require(self.recon_scale > 0, "model.recon_scale", self.recon_scale, "must be > 0")
        _require(self.prior_var > 0, "model.prior_var", self.prior_var, "must be > 0")
        _require(self.beta >= 0, "model.beta", self.beta, "a KL weight must be >= 0")
        _require(self.lam >= 0, "model.lam", self.lam, "a penalty weight must be >= 0")
        _require(
            len(self.scales) > 0 and all(s > 0 for s in self.scales),
            "model.scales",
            self.scales,
            "give one or more positive kernel scales",
        )
        _require(
            1 <= self.n_projections <= MAX_WIDTH,
            "model.n_projections",
            self.n_projections,
            f"must be between 1 and {MAX_WIDTH}",
        )
        _require(
            len(self.mlp_hidden) > 0 and all(1 <= h <= MAX_WIDTH for h in self.mlp_hidden),
            "model.mlp_hidden",
            self.mlp_hidden,
            f"give one or more layer widths between 1 and {MAX_WIDTH}",
        )
        _require(
            1 <= self.critic_hidden <= MAX_WIDTH,
            "model.critic_hidden",
            self.critic_hidden,
            f"must be between 1 and {MAX_WIDTH}",
        )
        _require(
            1 <= self.critic_layers <= 64,
            "model.critic_layers",
            self.critic_layers,
            "must be between 1 and 64",
        )
        if self.name == "infovae":
            # InfoVAE (Zhao et al., eq. 6): weights (1 - alpha) on KL, (alpha + lambda - 1) on D.
            _require(
                self.alpha <= 1,
                "model.alpha",
                self.alpha,
                "InfoVAE needs alpha <= 1 so that the KL weight 1 - alpha is >= 0",
            )
            _require(
                self.alpha + self.lam >= 1,
                "model.alpha + model.lam",
                self.alpha + self.lam,
                f"InfoVAE needs alpha + lam >= 1 so that the divergence weight is >= 0 "
                f"(alpha={self.alpha}, lam={self.lam}); e.g. alpha=1 (MMD-VAE) with lam=1000",
            )

    @property
    def gaussian(self) -> bool:
        """Whether the encoder outputs a Gaussian q(z|x) (mean and log-variance)."""
        return self.encoder == "gaussian"

    @property
    def adversarial(self) -> bool:
        """Whether the model trains a latent critic beside the auto-encoder."""
        return _model_spec(self.name).critic(self)


def _model_defaults(name: str) -> dict[str, Any]:
    spec = _model_spec(name)
    return {"encoder": spec.encoders[0], **spec.defaults, "name": name}


def make_model_config(name: str = "wae-mmd", **fields_: Any) -> ModelConfig:
    """A :class:`ModelConfig` for ``name`` with the papers' defaults, then ``fields_`` on top.

    A field that model ``name`` does not read (``beta`` for WAE-MMD, ``lam`` for the VAE) is
    refused unless it holds that model's default, so a complete saved config still loads.
    """
    spec = _model_spec(name)
    config = _build(ModelConfig, {**_model_defaults(name), **fields_, "name": name}, "model")
    default = ModelConfig(**_model_defaults(name))
    for key in sorted(set(fields_) - spec.fields):
        if getattr(config, key) != getattr(default, key):
            from waekit.models import MODELS

            readers = [n for n, s in MODELS.items() if key in s.fields]
            raise ConfigError(
                f"model.{key}={brief(fields_[key])} is not read by model {name!r}: remove the "
                f"key, or choose a model that reads it (--set model.name={readers[0]}; "
                f"model.{key} is read by {', '.join(readers)})"
            )
    return config


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from. ``name`` is a data set (see ``waekit data list``)."""

    name: str = "mnist"
    root: str | None = None
    path: str | None = None
    image_size: int | None = None
    download: bool = True
    fallback: bool = False
    limit: int | None = None
    test_split: str = "test"

    def __post_init__(self) -> None:
        _check_types(self, "data")
        _require(bool(self.name), "data.name", self.name, "name a data set")
        _require(self.limit is None or self.limit >= 1, "data.limit", self.limit, "must be >= 1")
        _require(
            self.image_size is None or 8 <= self.image_size <= MAX_IMAGE_SIZE,
            "data.image_size",
            self.image_size,
            f"must be between 8 and {MAX_IMAGE_SIZE} pixels, e.g. --set data.image_size=32",
        )


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation: Adam, a learning-rate schedule, precision, logging cadence."""

    steps: int | None = None
    epochs: float = 100.0
    batch_size: int = 100
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    critic_lr: float = 5e-4
    critic_betas: tuple[float, float] = (0.5, 0.999)
    #: Adam's epsilon for both optimisers (docs/math.md, section 7: it scales with the loss).
    adam_eps: float = 1e-8
    schedule: Schedule = "wae"
    lr_milestones: tuple[float, ...] = (30.0, 50.0)
    lr_factors: tuple[float, ...] = (0.5, 0.2)
    grad_clip: float | None = None
    precision: Precision = "auto"
    device: str = "auto"
    compile: Switch = "auto"
    seed: int = 0
    log_every: int = 50
    image_every: int = 0
    checkpoint_every: int = 0
    holdout: int = 500

    def __post_init__(self) -> None:
        _check_types(self, "train")
        _require(self.steps is None or self.steps >= 1, "train.steps", self.steps, "must be >= 1")
        _require(
            0 < self.epochs <= MAX_EPOCHS,
            "train.epochs",
            self.epochs,
            f"must be > 0 and at most {MAX_EPOCHS:g}, e.g. --set train.epochs=100",
        )
        _require(
            0 <= self.seed <= MAX_SEED,
            "train.seed",
            self.seed,
            f"must be an integer from 0 to 2**32 - 1 = {MAX_SEED}, e.g. --set train.seed=0",
        )
        _require(
            self.batch_size >= 2,
            "train.batch_size",
            self.batch_size,
            "must be >= 2 (the unbiased MMD needs two codes)",
        )
        _require(self.lr > 0, "train.lr", self.lr, "must be > 0")
        _require(self.critic_lr > 0, "train.critic_lr", self.critic_lr, "must be > 0")
        _require(
            0 < self.adam_eps < 1,
            "train.adam_eps",
            self.adam_eps,
            "must be in (0, 1), e.g. --set train.adam_eps=1e-8",
        )
        for key, betas in (("train.betas", self.betas), ("train.critic_betas", self.critic_betas)):
            _require(
                len(betas) == 2 and all(0 <= b < 1 for b in betas),
                key,
                betas,
                "give two numbers in [0, 1)",
            )
        _require(
            len(self.lr_milestones) == len(self.lr_factors),
            "train.lr_factors",
            self.lr_factors,
            "give one factor per milestone in train.lr_milestones",
        )
        _require(
            all(f > 0 for f in self.lr_factors),
            "train.lr_factors",
            self.lr_factors,
            "factors must be > 0",
        )
        _require(
            self.grad_clip is None or self.grad_clip > 0,
            "train.grad_clip",
            self.grad_clip,
            "must be > 0, or null for no clipping",
        )
        _require(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
            "train.device",
            self.device,
            "use 'auto', 'cpu', 'cuda' or 'cuda:N'",
        )
        for key in ("log_every", "image_every", "checkpoint_every", "holdout"):
            value = getattr(self, key)
            _require(value >= 0, f"train.{key}", value, "must be >= 0 (0 turns it off)")


@dataclass(frozen=True)
class DistributedConfig:
    """Multi-process training (torchrun). Ignored in a single process.

    ``global_batch_objective`` (default): the regulariser (MMD, critic, sliced distance) is
    computed on the codes of the whole global batch, gathered from every process, so K
    processes at batch n/K train exactly as one at batch n. False: each process estimates it
    on its own n/K codes: the MMD^2 estimate stays unbiased but has more variance, the
    sliced-Wasserstein one is biased upward (about K times more), and the critic sees
    smaller batches (docs/distributed.md).
    """

    global_batch_objective: bool = True
    sync_batch_norm: bool = False


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "distributed": DistributedConfig,
}


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


#: A number in exponent notation without a dot ("1e-4"), which PyYAML reads as a string.
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a field's annotation, converting YAML lists to tuples.

    The one place where types, choices (``Literal``) and number ranges are checked."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if isinstance(value, bool) and {"on", "off"} <= set(args):
            value = "on" if value else "off"  # YAML 1.1 reads on/off/yes/no/true as booleans
        if isinstance(value, str) and value in args:
            return value
        raise ConfigError(f"{key}={brief(value)} is invalid: choose one of {args}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ConfigError(
                f"{key}={brief(value)} has the wrong length: expected {len(args)} items"
            )
        return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}={brief(value)} has the wrong type: expected true or false")
    if annotation is int:
        number = value
        if isinstance(number, str) and _EXPONENT_NUMBER.fullmatch(number.strip()):
            number = float(number)  # "1e5" (YAML 1.1 reads it as a string)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, int) and not isinstance(number, bool):
            if abs(number) > _MAX_INT:
                raise ConfigError(
                    f"{key}={brief(value)} is out of range: an integer here is at most 2**63 - 1"
                )
            return number
        raise ConfigError(f"{key}={brief(value)} has the wrong type: expected an integer")
    if annotation is float:
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise ConfigError(f"{key}={brief(value)} is invalid: give a finite number")
            return number
        raise ConfigError(f"{key}={brief(value)} has the wrong type: expected a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}={brief(value)} has the wrong type: expected a string")
    raise ConfigError(f"{key}: unsupported annotation {annotation!r}")


def _key(key: Any) -> str:
    """A key as the user wrote it, bounded."""
    return key if isinstance(key, str) and len(key) <= 60 else brief(key)


def _build(cls: type, values: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known, key=str)
    if unknown:
        raise ConfigError(
            f"unknown key {section}.{_key(unknown[0])}; "
            f"the keys of '{section}' are: {', '.join(sorted(known))}"
        )
    coerced = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    return cls(**coerced)


def config_from_dict(raw: dict[str, Any] | None) -> RunConfig:
    """Build a :class:`RunConfig` from nested plain data (a parsed YAML file)."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SECTIONS), key=str)
    if unknown:
        raise ConfigError(
            f"unknown section {brief(unknown[0])}; the sections are: {', '.join(SECTIONS)}"
        )
    built: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        values = raw.get(section) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"section '{section}' must be a mapping, got {brief(values)}")
        if cls is ModelConfig:
            values = dict(values)
            built[section] = make_model_config(values.pop("name", "wae-mmd"), **values)
        else:
            built[section] = _build(cls, values, section)
    return RunConfig(**built)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model.lam=5"`` -> ``(["model", "lam"], 5)``; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {brief(text)} must look like section.key=value")
    key, _, raw_value = text.partition("=")
    path = key.strip().split(".")
    if len(path) != 2 or not all(path):
        raise ConfigError(f"override key {brief(key)} must be section.key, e.g. model.lam")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override {brief(text)}: the value is not valid YAML ({brief(str(exc), 200)})"
        ) from exc
    return path, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    # A section that is not a mapping is left as it is for config_from_dict to reject.
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for text in overrides:
        (section, key), value = parse_override(text)
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown section {brief(section)} in override {brief(text)}; the sections are: "
                f"{', '.join(SECTIONS)}"
            )
        current = merged.get(section) or {}
        if not isinstance(current, dict):
            raise ConfigError(f"section '{section}' must be a mapping, got {brief(current)}")
        merged[section] = {**current, key: value}
    return merged


def preset_names() -> list[str]:
    files = resources.files("waekit") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {brief(str(p))} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config file {brief(str(p))} is not valid YAML: {brief(str(exc), 300)}"
        ) from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {brief(str(p))} must hold a mapping of sections")
    return data or {}


def preset_dict(name: str) -> dict[str, Any]:
    names = preset_names()
    if name not in names:
        raise ConfigError(f"unknown preset {brief(name)}; the presets are: {', '.join(names)}")
    text = (resources.files("waekit") / "presets" / f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def _merge(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``raw`` with dotted overrides applied. When they change ``model.name``, the new model
    starts from its own defaults: of the old model's fields only those that depart from the
    old model's defaults (a changed latent_dim, net, ...) and that the new model reads carry
    over; the fields named in ``overrides`` always do."""
    old_model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    old_name = old_model.get("name", "wae-mmd")
    merged = apply_overrides(raw, list(overrides))
    model = merged.get("model")
    if not isinstance(model, dict) or model.get("name", "wae-mmd") == old_name:
        return merged
    old_defaults = _to_plain(dataclasses.asdict(make_model_config(old_name)))
    reads = _model_spec(model.get("name", "wae-mmd")).fields
    given = {k for text in overrides for (s, k), _ in [parse_override(text)] if s == "model"}
    merged["model"] = {
        k: v
        for k, v in model.items()
        if k in given or k == "name" or (k in reads and v != old_defaults.get(k))
    }
    return merged


def resolve_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    saved: str | Path | None = None,
    config: RunConfig | None = None,
) -> RunConfig:
    """The one place that decides a run's config, then applies ``overrides`` (``--set``).

    The base is, in this order: ``config`` (a :class:`RunConfig`), ``preset`` or
    ``config_file`` (at most one of these three), ``saved`` (a run's config.yaml, used when
    it exists: a resumed run continues as it was), else the quickstart preset. Overrides
    that change ``model.name`` start the new model from its own defaults (see
    :func:`with_overrides`).
    """
    given = [
        k
        for k, v in (("config", config), ("preset", preset), ("config_file", config_file))
        if v is not None and v != ""
    ]
    if len(given) > 1:
        flags = {"config": "a RunConfig", "preset": "--preset", "config_file": "--config"}
        raise ConfigError(f"give {' or '.join(flags[k] for k in given)}, not both")
    if config is not None:
        raw = config.to_dict()
    elif config_file:
        raw = read_yaml(config_file)
    elif preset:
        raw = preset_dict(preset)
    elif saved is not None and Path(saved).is_file():
        raw = read_yaml(saved)
    else:
        raw = preset_dict("quickstart")
    return config_from_dict(_merge(raw, overrides))


def load_config(
    preset: str | None = None, config_file: str | Path | None = None, overrides: Sequence[str] = ()
) -> RunConfig:
    """A preset or a YAML file (not both; default the quickstart preset), then overrides."""
    return resolve_config(preset=preset, config_file=config_file, overrides=overrides)


def with_overrides(config: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """``config`` with dotted overrides applied. When they change ``model.name``, the new
    model starts from its own defaults: of the old model's fields only those that depart
    from the old model's defaults (a changed latent_dim, net, ...) carry over."""
    return resolve_config(config=config, overrides=overrides)


__all__ = [
    "WAE_SCALES",
    "ModelConfig",
    "DataConfig",
    "TrainConfig",
    "DistributedConfig",
    "RunConfig",
    "make_model_config",
    "config_from_dict",
    "load_config",
    "resolve_config",
    "with_overrides",
    "preset_names",
    "replace",
]
