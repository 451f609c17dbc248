"""The objectives: one latent auto-encoder, one ``regularizer`` hook per model family.

Every model computes ``loss = mean_i [ c(x_i, G(z_i)) ] + sum_k w_k * R_k`` where the
reconstruction cost is summed over pixels per image (docs/math.md, section 1) and the
regularisers R_k are per-image terms (KL) or batch terms on the aggregate posterior Q_Z
(MMD, sliced Wasserstein, the latent critic). :meth:`LatentAutoEncoder.losses` returns the
named terms; the trainer only back-propagates ``losses["loss"]`` and steps.

The table :data:`MODELS` holds one :class:`ModelSpec` per name: its class, its paper
defaults, its encoder kinds, whether it trains a critic, and the config fields it reads.
That is the only place model names live; a new model is one entry and one ``regularizer``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from waekit import divergences as dv
from waekit.config import EncoderKind, ModelConfig, make_model_config
from waekit.errors import CheckpointError, ConfigError, WaekitError, brief
from waekit.nets import LatentCritic, build_networks

__all__ = [
    "Posterior",
    "LatentAutoEncoder",
    "AutoEncoder",
    "VAE",
    "WAEMMD",
    "WAEGAN",
    "InfoVAE",
    "SWAE",
    "MODELS",
    "MODEL_NAMES",
    "SHARED_FIELDS",
    "ModelSpec",
    "model_spec",
    "build_model",
    "model_from_config",
    "save_model",
    "load_model",
]


#: What a ``regularizer`` returns: {name: (weight, per-sample (n,) or scalar term)}.
Penalties = dict[str, tuple[float, torch.Tensor]]


@dataclass
class Posterior:
    """An encoding of a batch: z is the code used for decoding, shape (n, d)."""

    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor | None = None


class LatentAutoEncoder(nn.Module):
    """Encoder, decoder, prior N(0, prior_var I), and the reconstruction cost.

    Subclasses override :meth:`regularizer` only.
    """

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config = config
        self.image_shape = tuple(int(s) for s in image_shape)
        d = config.latent_dim
        self.encoder, self.decoder = build_networks(
            config.net,
            self.image_shape,
            d,
            2 * d if config.gaussian else d,
            config.batch_norm,
            config.mlp_hidden,
            config.decoder_batch_norm,
        )
        self.critic = (
            LatentCritic(d, config.critic_hidden, config.critic_layers)
            if config.adversarial
            else None
        )

    # -- encoding and decoding -------------------------------------------------------------
    def posterior(
        self, x: torch.Tensor, sample: bool | None = None, eps: torch.Tensor | None = None
    ) -> Posterior:
        """Encode images (n, C, H, W) in [0, 1]. A Gaussian encoder reparameterises
        z = mu + exp(logvar / 2) * eps when ``sample`` (default: in training mode), with
        ``eps`` (n, d) given or drawn from N(0, I)."""
        h = self.encoder(x)
        if not self.config.gaussian:
            return Posterior(z=h, mu=h)
        mu, logvar = h.chunk(2, dim=1)
        sample = self.training if sample is None else sample
        if not sample:
            return Posterior(z=mu, mu=mu, logvar=logvar)
        eps = torch.randn_like(mu) if eps is None else eps.to(device=mu.device, dtype=mu.dtype)
        return Posterior(z=mu + torch.exp(0.5 * logvar) * eps, mu=mu, logvar=logvar)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` checked and as the nets take it: uint8 images (0..255) are divided by 255;
        float images must have values in [0, 1] and the model's (C, H, W).

        The public entry points (:meth:`losses`, :meth:`encode`, :meth:`reconstruct`) pass
        their input through this, so 0..255 floats, which would inflate the cost by orders of
        magnitude, are an error rather than a silent wrong loss. The trainer feeds batches
        that are checked once when the data are loaded, so its step does not pay for it.
        """
        if tuple(x.shape[1:]) != self.image_shape or x.dim() != 4:
            raise ValueError(
                f"images of shape {tuple(x.shape)} do not fit this model, which takes "
                f"(n, {', '.join(map(str, self.image_shape))}) batches"
            )
        if x.dtype == torch.uint8:
            return x.float().div_(255.0)
        if not torch.is_floating_point(x):
            raise ValueError(f"images must be uint8 (0..255) or float in [0, 1], not {x.dtype}")
        lo, hi = torch.aminmax(x.detach())
        if not (0.0 <= float(lo) and float(hi) <= 1.0):
            raise ValueError(
                f"image values must lie in [0, 1], these span {float(lo):.4g}..{float(hi):.4g}: "
                "divide 0..255 values by 255, or pass uint8 images"
            )
        return x

    def encode(self, x: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """Codes (n, d) of images (uint8, or float in [0, 1]): the posterior mean unless
        ``sample``."""
        return self.posterior(self.images(x), sample=sample).z

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's pre-sigmoid outputs (n, C, H, W)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoded posterior means of images (n, C, H, W), in [0, 1]."""
        return self.decode(self.encode(x))

    def sample_prior(
        self, n: int, generator: torch.Generator | None = None, like: torch.Tensor | None = None
    ) -> torch.Tensor:
        """n draws from the prior N(0, prior_var I), shape (n, d)."""
        ref = like if like is not None else next(self.parameters())
        shape = (n, self.config.latent_dim)
        if generator is not None:
            eps = torch.randn(shape, generator=generator, device=generator.device)
            eps = eps.to(device=ref.device, dtype=ref.dtype)
        else:
            eps = torch.randn(shape, device=ref.device, dtype=ref.dtype)
        return eps * math.sqrt(self.config.prior_var)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n random images from the prior through the decoder, in [0, 1]."""
        return self.decode(self.sample_prior(n, generator))

    # -- the objective ---------------------------------------------------------------------
    def critic_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Critic logits; with ``critic_log_prior`` the prior's log-density is added
        (the WAE code's option: the critic then only has to learn log q(z) - log p(z))."""
        if self.critic is None:
            raise ConfigError(
                f"model.name={self.config.name!r} has no latent critic; critic_logits needs an "
                "adversarial model (wae-gan, aae, or infovae with divergence=gan)"
            )
        logits = self.critic(z)
        if self.config.critic_log_prior:
            logits = logits + dv.gaussian_log_density(z.float(), self.config.prior_var)
        return logits

    def regularizer(self, post: Posterior, prior: torch.Tensor) -> Penalties:
        """Named penalty terms with their weights: {name: (weight, per-sample (n,) or scalar)}.

        ``post`` holds the codes of a batch, ``prior`` (m, d) draws from the prior."""
        return {}

    def reconstruction_cost(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """c(x_i, G(z_i)) per image, summed over pixels, shape (n,)."""
        cfg = self.config
        return dv.reconstruction_cost(x, self.decoder(z).float(), cfg.recon, cfg.recon_scale)

    def objective(
        self, recon: torch.Tensor, post: Posterior, prior: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Named terms and ``loss = mean(recon) + sum_k w_k * mean(R_k(post, prior))``.

        ``recon`` (n,) are per-image costs; ``post`` and ``prior`` are what the regulariser
        compares. They may hold more codes than ``recon`` has images: with several processes
        the trainer passes the codes of the whole global batch (see :mod:`waekit.distributed`).
        """
        terms: dict[str, torch.Tensor] = {"recon": recon}
        total = recon.mean()
        for name, (weight, value) in self.regularizer(post, prior).items():
            terms[name] = value
            if weight:
                total = total + weight * value.mean()
        terms["loss"] = total
        return terms

    def losses(
        self, x: torch.Tensor, post: Posterior | None = None, prior: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Named loss terms for a batch; ``loss`` is the scalar to minimise.

        ``x``: images (n, C, H, W), uint8 or float in [0, 1] (see :meth:`images`). Per-image
        terms have shape (n,); batch terms (MMD, SW, ...) are scalars. ``prior`` (n, d) are
        the prior draws of the penalty (default: drawn here).
        """
        x = self.images(x)
        post = self.posterior(x) if post is None else post
        recon = self.reconstruction_cost(x, post.z)
        prior = self.sample_prior(x.shape[0], like=post.z) if prior is None else prior
        return self.objective(recon, post, prior)

    def forward(self, x: torch.Tensor, post: Posterior | None = None) -> dict[str, torch.Tensor]:
        """The loss terms (so that DistributedDataParallel and torch.compile can wrap it)."""
        return self.losses(x, post)

    def critic_loss(self, z: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """The latent critic's weighted loss on codes ``z`` (detached by the caller) and
        prior draws (default: as many, drawn here): lam * mean[ -log D(p) - log(1 - D(z)) ]."""
        prior = self.sample_prior(z.shape[0], like=z) if prior is None else prior
        per_sample = dv.critic_loss(self.critic_logits(prior), self.critic_logits(z))
        return self.penalty_weight * per_sample.mean()

    @property
    def penalty_weight(self) -> float:
        """The weight of the latent critic's loss (lambda)."""
        return self.config.lam

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """What the auto-encoder's optimiser steps: the encoder's and decoder's weights."""
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def critic_parameters(self) -> list[nn.Parameter]:
        """What the critic's optimiser steps (none for a model without a critic)."""
        return [] if self.critic is None else list(self.critic.parameters())


class AutoEncoder(LatentAutoEncoder):
    """A plain deterministic auto-encoder: no latent penalty (the prior is not enforced)."""


def _prior_kl(post: Posterior, prior_var: float) -> torch.Tensor:
    """KL(q(z|x) || N(0, prior_var I)) per image: rescale mu and logvar to the unit prior."""
    mu = post.mu / math.sqrt(prior_var)
    logvar = post.logvar - math.log(prior_var)
    return dv.gaussian_kl(mu, logvar)


class VAE(LatentAutoEncoder):
    """VAE and beta-VAE: loss = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)), p(z) the prior
    N(0, prior_var I) that :meth:`sample` draws from (docs/math.md, section 2)."""

    def regularizer(self, post: Posterior, prior: torch.Tensor) -> Penalties:
        return {"kl": (self.config.beta, _prior_kl(post, self.config.prior_var))}


class WAEMMD(LatentAutoEncoder):
    """WAE-MMD: loss = E c(x, G(z)) + lam * MMD_k^2(Q_Z, P_Z), unbiased estimator
    (docs/math.md, section 3)."""

    def regularizer(self, post: Posterior, prior: torch.Tensor) -> Penalties:
        cfg = self.config
        mmd = dv.mmd2(post.z.float(), prior.float(), cfg.kernel, cfg.scales, cfg.prior_var)
        return {"mmd": (cfg.lam, mmd)}


class WAEGAN(LatentAutoEncoder):
    """WAE-GAN (deterministic encoder) and AAE (Gaussian encoder): loss =
    E c(x, G(z)) - lam * E log D(z), with the critic trained by :meth:`critic_loss`."""

    def regularizer(self, post: Posterior, prior: torch.Tensor) -> Penalties:
        return {"adv": (self.config.lam, dv.critic_generator_loss(self.critic_logits(post.z)))}


class InfoVAE(LatentAutoEncoder):
    """InfoVAE (Zhao et al., eq. 6): E_q[-log p(x|z)] + (1 - alpha) KL(q(z|x) || p(z))
    + (alpha + lam - 1) D(q(z) || p(z)), D = MMD (default) or the latent critic."""

    @property
    def penalty_weight(self) -> float:
        return self.config.alpha + self.config.lam - 1.0

    def regularizer(self, post: Posterior, prior: torch.Tensor) -> Penalties:
        cfg = self.config
        terms: Penalties = {"kl": (1.0 - cfg.alpha, _prior_kl(post, cfg.prior_var))}
        if cfg.divergence == "mmd":
            mmd = dv.mmd2(post.z.float(), prior.float(), cfg.kernel, cfg.scales, cfg.prior_var)
            terms["mmd"] = (self.penalty_weight, mmd)
        else:
            terms["adv"] = (
                self.penalty_weight,
                dv.critic_generator_loss(self.critic_logits(post.z)),
            )
        return terms


class SWAE(LatentAutoEncoder):
    """Sliced-Wasserstein AE (Kolouri et al.): E c(x, G(z)) + lam * SW_2^2(Q_Z, P_Z)."""

    def regularizer(self, post: Posterior, prior: torch.Tensor) -> Penalties:
        cfg = self.config
        sw = dv.sliced_wasserstein_power(post.z.float(), prior.float(), cfg.n_projections, 2.0)
        return {"sw": (cfg.lam, sw)}


#: Fields every model reads: the code, the prior, the reconstruction cost, and the sizes of
#: the networks (a size that a model's nets do not use, such as the critic's width for the
#: VAE, is a shape setting a shared config may carry, not a weight of the objective).
SHARED_FIELDS = frozenset(
    {"name", "latent_dim", "net", "encoder", "recon", "recon_scale", "prior_var"}
    | {"batch_norm", "decoder_batch_norm", "mlp_hidden", "critic_hidden", "critic_layers"}
)
_MMD = frozenset({"kernel", "scales"})
_CRITIC = frozenset({"critic_log_prior"})


@dataclass(frozen=True)
class ModelSpec:
    """One row of the model table: what the code knows about a model by its name."""

    cls: type[LatentAutoEncoder]
    #: The papers' defaults, applied before the user's fields (docs/math.md, section 7).
    defaults: Mapping[str, Any]
    #: The encoder kinds the model takes; the first is its default.
    encoders: tuple[EncoderKind, ...]
    #: The config fields it reads beyond :data:`SHARED_FIELDS`.
    reads: frozenset[str] = frozenset()
    #: Whether a config of this model trains a latent critic beside the auto-encoder.
    critic: Callable[[ModelConfig], bool] = field(default=lambda config: False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", frozenset(self.reads))

    @property
    def fields(self) -> frozenset[str]:
        """Every config field the model reads."""
        return SHARED_FIELDS | self.reads


def _always(config: ModelConfig) -> bool:
    return True


#: The one model table.
MODELS: dict[str, ModelSpec] = {
    "ae": ModelSpec(AutoEncoder, {"lam": 0.0}, ("deterministic", "gaussian")),
    "vae": ModelSpec(VAE, {"recon": "bernoulli", "beta": 1.0}, ("gaussian",), {"beta"}),
    "beta-vae": ModelSpec(VAE, {"recon": "bernoulli", "beta": 4.0}, ("gaussian",), {"beta"}),
    "wae-mmd": ModelSpec(WAEMMD, {"lam": 10.0}, ("deterministic", "gaussian"), {"lam"} | _MMD),
    "wae-gan": ModelSpec(
        WAEGAN, {"lam": 1.0}, ("deterministic", "gaussian"), {"lam"} | _CRITIC, _always
    ),
    # WAE-GAN with a Gaussian encoder is the adversarial auto-encoder.
    "aae": ModelSpec(WAEGAN, {"lam": 1.0}, ("gaussian",), {"lam"} | _CRITIC, _always),
    # alpha = 1 is the MMD-VAE: no KL term, MMD weight alpha + lam - 1 = lam.
    "infovae": ModelSpec(
        InfoVAE,
        {"recon": "bernoulli", "alpha": 1.0, "lam": 1000.0},
        ("gaussian",),
        {"alpha", "lam", "divergence"} | _MMD | _CRITIC,
        lambda config: config.divergence == "gan",
    ),
    "swae": ModelSpec(SWAE, {"lam": 10.0}, ("deterministic", "gaussian"), {"lam", "n_projections"}),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The table's row for ``name``; a :class:`~waekit.errors.ConfigError` for an unknown one."""
    if not isinstance(name, str) or name not in MODELS:
        raise ConfigError(f"model.name={brief(name)} is invalid: choose one of {MODEL_NAMES}")
    return MODELS[name]


def model_from_config(config: ModelConfig, image_shape: tuple[int, int, int]) -> LatentAutoEncoder:
    """The model ``config`` describes, for images of ``image_shape`` (C, H, W)."""
    return model_spec(config.name).cls(config, tuple(image_shape))


def build_model(
    name: str,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    latent_dim: int = 8,
    net: str = "conv",
    **fields: Any,
) -> LatentAutoEncoder:
    """Build model ``name`` for images of ``image_shape`` (C, H, W) with the papers' defaults.

    ``fields`` are :class:`~waekit.config.ModelConfig` fields by name (``beta``, ``lam``,
    ``alpha``, ``kernel``, ``scales``, ``prior_var``, ``recon``, ...).
    """
    config = make_model_config(name, latent_dim=latent_dim, net=net, **fields)
    return model_from_config(config, tuple(image_shape))


def _model_meta(model: LatentAutoEncoder) -> dict[str, Any]:
    return {"config": asdict(model.config), "image_shape": list(model.image_shape)}


def save_model(model: LatentAutoEncoder, path: str | Path) -> Path:
    """Write ``path`` (.safetensors weights) and its config as JSON in the file's metadata and
    beside it (``path`` with suffix .json). Loading never unpickles anything."""
    from waekit.io import atomic_write_bytes, save_tensors

    path = Path(path)
    meta = _model_meta(model)
    save_tensors(model.state_dict(), path, {"waekit_model": json.dumps(meta)})
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, indent=2).encode())
    return path


def model_from_meta(meta: dict[str, Any]) -> LatentAutoEncoder:
    """The model a saved metadata dict describes (its config and image shape)."""
    try:
        cfg = dict(meta["config"])
        config = make_model_config(cfg.pop("name"), **cfg)
        shape = tuple(int(s) for s in meta["image_shape"])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise CheckpointError(
            f"model metadata is incomplete or invalid ({brief(str(exc))}); re-save the model"
        ) from exc
    if len(shape) != 3 or not all(1 <= s <= 2**16 for s in shape):
        raise CheckpointError(f"model metadata has image_shape {brief(shape)}; expected (C, H, W)")
    return model_from_config(config, shape)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LatentAutoEncoder:
    """Load a model written by :func:`save_model` (safetensors only: no code is run).

    The metadata is checked first: the model it describes is built on the meta device (no
    memory) and its tensor shapes must equal those the file declares, so a crafted header
    cannot make the loader allocate more than the file holds.
    """
    from waekit.io import load_tensors, read_header, recovery_hint

    path = Path(path)
    declared, raw = read_header(path)
    text = raw.get("waekit_model")
    if text is None:
        raise CheckpointError(
            f"{path} holds no waekit model metadata; was it written by save_model?"
        )
    try:
        meta = json.loads(text)
        if not isinstance(meta, dict):
            raise TypeError(f"a JSON {type(meta).__name__}, not an object")
        with torch.device("meta"):
            skeleton = model_from_meta(meta)
    except (json.JSONDecodeError, RecursionError, TypeError, WaekitError) as exc:
        raise CheckpointError(
            f"{path} has corrupt model metadata ({brief(str(exc))}); {recovery_hint(path)}"
        ) from exc
    wanted = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    have = {k: info.shape for k, info in declared.items()}
    if wanted != have:
        diff = sorted(set(wanted.items()) ^ set(have.items()))[:2]
        raise CheckpointError(
            f"weights in {path} do not fit the model its metadata describes (first "
            f"differences: {brief(diff)}); {recovery_hint(path)}"
        )
    state, _ = load_tensors(path)
    model = model_from_meta(meta)
    model.load_state_dict(state)
    return model.to(device).eval()
