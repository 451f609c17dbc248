"""The training loop: data on the device, Adam, schedules, autocast, checkpoints, resume.

One :class:`Trainer` runs one :class:`~waekit.config.RunConfig` into one run folder (the
folder's layout and writer are in :mod:`waekit.run`). :meth:`Trainer.train_step` is the
whole step, adversarial schedule included: encode and decode once, one critic step
(WAE-GAN, AAE), then one auto-encoder step.

Resuming is exact: the data order is a function of (seed, epoch), the learning rate a
function of the step, and every random draw of a step (prior samples, reparameterisation
noise, random projections) comes from the RNG re-seeded from (seed, step), so a run
stopped and resumed ends with the same weights as one that never stopped.

Under torchrun the same holds for any number of processes: the global batch and all of a
step's noise are those of one process, and each rank takes its share (multi-process
details and the gradient bookkeeping in :mod:`waekit.distributed`).

Speed: ``train.precision=auto`` trains in bf16 autocast with channels_last conv nets where
the hardware computes bf16 natively (a GPU that supports it, a CPU with AVX512-BF16 or
AMX), else in fp32 (:func:`choose_precision`); Adam is the fused kernel; the loss terms
stay on the device and are read back only when a record is logged (:class:`LossWindow`).
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from waekit import distributed as dist
from waekit.config import DataConfig, RunConfig, TrainConfig
from waekit.errors import ConfigError, TrainingDiverged, TrainingInterrupted
from waekit.generate import to_float
from waekit.models import LatentAutoEncoder, Posterior, model_from_config
from waekit.run import Run, RunWriter, load_data, load_run, resolve_device, stored_config

__all__ = [
    "Trainer",
    "train",
    "lr_factor",
    "total_steps",
    "DeviceBatches",
    "LossWindow",
    "Precision",
    "choose_precision",
    "cpu_has_native_bf16",
    "fused_adam",
    "use_compile",
    "load_training_data",
]


# -- schedules -----------------------------------------------------------------------------
def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at ``step``.

    'wae': piecewise constant, multiplied by lr_factors[i] from epoch lr_milestones[i] on
    (WAE paper: /2 at epoch 30, /5 more at 50); 'cosine': half a cosine to 0; 'constant'.
    """
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    factor = 1.0
    for milestone, f in zip(cfg.lr_milestones, cfg.lr_factors, strict=True):
        if step >= milestone * steps_per_epoch:
            factor *= f
    return factor


def total_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The run's length: ``train.steps`` when set (it wins), else epochs x steps an epoch."""
    if cfg.steps:
        return cfg.steps
    return max(1, round(cfg.epochs * steps_per_epoch))


# -- data ------------------------------------------------------------------------------------
def load_training_data(data: DataConfig):
    """(train split with ``data.limit``, held-out split or None) of a :class:`DataConfig`."""
    train_set = load_data(data, "train", limit=data.limit)
    try:
        test_set = load_data(data)
    except Exception as exc:  # a data set without a test split still trains
        print(f"no held-out split ({exc}); the best checkpoint is not tracked", file=sys.stderr)
        test_set = None
    return train_set, test_set


class DeviceBatches:
    """Batches of a uint8 image tensor that lives on the training device.

    The whole set is copied once; each batch is an index into it, converted to float in
    [0, 1] on the device (no per-batch host-to-device copy, no Python per image). The order
    is a permutation drawn from (seed, epoch), so any step's batch can be recomputed. With
    several processes each rank takes its contiguous share of every global batch.
    """

    def __init__(
        self, images: torch.Tensor, batch_size: int, seed: int, rank: int = 0, world: int = 1
    ):
        if batch_size % world:
            raise ConfigError(
                f"train.batch_size={batch_size} does not split over {world} processes; "
                f"use a multiple of {world}"
            )
        if len(images) < batch_size:
            raise ConfigError(
                f"train.batch_size={batch_size} is larger than the data set ({len(images)} images)"
            )
        self.images = images
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world = rank, world
        self.steps_per_epoch = len(images) // batch_size  # the last partial batch is dropped
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    def batch(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._perm = torch.randperm(len(self.images), generator=g).to(self.images.device)
            self._epoch = epoch
        share = self.batch_size // self.world
        start = i * self.batch_size + self.rank * share
        idx = self._perm[start : start + share]
        return self.images.index_select(0, idx).float().div_(255.0)


# -- precision and the speed choices (pure functions: every branch runs in the CPU tests) ----
def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16 instructions).

    ``flags``: the CPU's feature flags; default those of /proc/cpuinfo (empty elsewhere).
    """
    if flags is None:
        flags = set()
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("flags"):
                        flags = set(line.split(":", 1)[1].split())
                        break
        except OSError:
            pass
    return bool(flags & {"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class Precision:
    """How a step computes: ``mode`` 'fp32' | 'bf16' | 'fp16' (the autocast dtype), conv
    tensors in channels_last, and ``reason`` (one line for the log and config.yaml)."""

    mode: str
    channels_last: bool
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype (bf16 also when autocast is off: a dtype every device takes)."""
        return torch.float16 if self.mode == "fp16" else torch.bfloat16

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self, device: torch.device) -> torch.autocast:
        return torch.autocast(device.type, dtype=self.dtype, enabled=self.mode != "fp32")

    def describe(self) -> str:
        return self.mode + (" autocast + channels_last" if self.channels_last else "")


def choose_precision(
    requested: str,
    device: torch.device,
    conv: bool,
    cpu_bf16: bool | None = None,
    cuda_bf16: bool | None = None,
) -> Precision:
    """The precision of ``train.precision=requested`` on ``device``.

    'auto': bf16 autocast where the hardware runs bf16 natively (``cpu_bf16`` / ``cuda_bf16``,
    detected when None), fp32 elsewhere (emulated bf16 is slower than fp32). channels_last
    goes with reduced precision on conv nets: oneDNN's and cuDNN's fast bf16 convolutions
    are NHWC. fp16 needs a GPU (its loss scaling); on a CPU it trains in fp32.
    """
    cuda = device.type == "cuda"
    if requested == "auto":
        if cuda:
            native = torch.cuda.is_bf16_supported() if cuda_bf16 is None else cuda_bf16
            where = "the GPU supports bf16" if native else "the GPU has no bf16"
        else:
            native = cpu_has_native_bf16() if cpu_bf16 is None else cpu_bf16
            where = "the CPU has native bf16" if native else "the CPU has no native bf16"
        mode = "bf16" if native else "fp32"
        reason = f"train.precision=auto: {where}"
    elif requested == "fp16" and not cuda:
        mode, reason = "fp32", "train.precision=fp16 needs a GPU (loss scaling); fp32 on the CPU"
    else:
        mode, reason = requested, f"train.precision={requested}"
    return Precision(mode, channels_last=conv and mode != "fp32", reason=reason)


def fused_adam(device: torch.device) -> bool:
    """Whether Adam runs as one fused kernel: on CUDA and CPU (on the CPU 4x faster than
    the per-tensor loop for the paper's conv nets, and no step counter read to the host)."""
    return device.type in ("cuda", "cpu")


def use_compile(mode: str, device: torch.device) -> bool:
    """torch.compile for ``train.compile``: 'auto' compiles on CUDA only (on the CPU it did
    not beat eager for these nets)."""
    return mode == "on" or (mode == "auto" and device.type == "cuda")


# -- a step's random draws ----------------------------------------------------------------
#: Streams of a step's random draws, each from the RNG re-seeded by (seed, step, stream).
_EPS, _CRITIC, _PENALTY = 1, 2, 3


def _step_seed(seed: int, step: int, stream: int) -> int:
    """A well-mixed 63-bit seed for (train.seed, step, stream)."""
    state = np.random.SeedSequence([seed % 2**64, step, stream]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class _AutoEncoderPass(nn.Module):
    """The per-image half of a step, which DistributedDataParallel wraps: encode the local
    batch, decode it, return (posterior, reconstruction cost (n,)).

    Only the encoder and decoder are submodules, so DDP averages exactly their gradients;
    the critic's step is synchronised on its own (:func:`waekit.distributed.average_gradients`).
    Every parameter is used in every forward, as DDP requires without unused-parameter search.
    """

    def __init__(self, model: LatentAutoEncoder):
        super().__init__()
        self.encoder = model.encoder
        self.decoder = model.decoder
        self._model = [model]  # a list: not registered, so the critic stays outside DDP

    def forward(
        self, x: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[Posterior, torch.Tensor]:
        model = self._model[0]
        post = model.posterior(x, eps=eps)
        return post, model.reconstruction_cost(x, post.z)


class LossWindow:
    """The loss terms of the steps since the last record, kept on the device.

    :meth:`add` only queues device work; :meth:`read` is the loop's one read back to the
    host, once per ``train.log_every`` steps, so a step never waits for the GPU.
    """

    def __init__(self, step: int):
        self.terms: list[dict[str, torch.Tensor]] = []
        self.start, self.t0 = step, time.perf_counter()

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        """Queue a step's terms (device scalars)."""
        self.terms.append(terms)

    def read(self, world: dist.World) -> dict[str, float]:
        """The mean of each term over the window (and over ranks), as floats."""
        means = {k: torch.stack([t[k] for t in self.terms]).mean() for k in self.terms[0]}
        return {k: float(v) for k, v in dist.average_scalars(means, world).items()}


# -- the trainer ---------------------------------------------------------------------------
class Trainer:
    """Train ``config`` into ``out_dir``; ``resume`` continues from checkpoints/last.

    The folder is checked and locked first (before any data is read); :meth:`fit` runs the
    loop and releases it, as does :meth:`close` for a trainer that is not fitted.
    """

    def __init__(
        self,
        config: RunConfig,
        out_dir: str | Path,
        resume: bool = False,
        data=None,
        test_data=None,
        progress: bool = True,
        world: dist.World | None = None,
    ):
        self.config = config
        self.out = Path(out_dir)
        self.world = world or dist.current()
        self.progress = progress and self.world.is_main
        self.run = RunWriter(self.out, config, resume, main=self.world.is_main)
        try:
            self._setup(data, test_data, resume)
        except BaseException:
            self.run.close(failed=True)
            raise

    def _setup(self, train_set, test_set, resume: bool) -> None:
        config, cfg, world = self.config, self.config.train, self.world
        self.device = world.device if world.size > 1 else resolve_device(cfg.device)
        if train_set is None:
            with dist.main_first(world):  # one download, not one per process
                train_set, test_set = load_training_data(config.data)
        if getattr(train_set, "note", None) and world.is_main:
            print(train_set.note, file=sys.stderr)
        self.train_set, self.test_set = train_set, test_set

        torch.manual_seed(cfg.seed)
        model = model_from_config(config.model, train_set.image_shape)
        self.precision = choose_precision(
            cfg.precision, self.device, conv=config.model.net != "mlp"
        )
        if world.size > 1 and config.distributed.sync_batch_norm:
            model = dist.sync_batch_norm(model, self.device)
        self.model: LatentAutoEncoder = model.to(
            self.device, memory_format=self.precision.memory_format
        )
        dist.broadcast_model(model, world)  # the critic is outside DDP's own broadcast
        fused = fused_adam(self.device)
        self.optimizers = {
            "ae": torch.optim.Adam(
                model.autoencoder_parameters(),
                lr=cfg.lr,
                betas=cfg.betas,
                eps=cfg.adam_eps,
                fused=fused,
            )
        }
        if model.critic is not None:
            self.optimizers["critic"] = torch.optim.Adam(
                model.critic_parameters(),
                lr=cfg.critic_lr,
                betas=cfg.critic_betas,
                eps=cfg.adam_eps,
                fused=fused,
            )
        # Loss scaling for fp16 only; disabled, its calls pass through.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.mode == "fp16")
        self.compiled = use_compile(cfg.compile, self.device)
        compiled = torch.compile if self.compiled else (lambda f: f)
        self.forward: Callable = compiled(dist.wrap(_AutoEncoderPass(model), world))
        self.objective: Callable = compiled(model.objective)

        array = np.ascontiguousarray(train_set.images)
        if not array.flags.writeable:  # a read-only memory map: torch wants its own copy
            array = array.copy()
        images = torch.from_numpy(array).to(self.device)
        self.batches = DeviceBatches(images, cfg.batch_size, cfg.seed, world.rank, world.size)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.total_steps = total_steps(cfg, self.steps_per_epoch)
        self.holdout = None
        if cfg.holdout and test_set is not None:
            self.holdout = to_float(test_set.images[: cfg.holdout], self.device)
        self.step = 0
        self._stop_signal: int | None = None
        if resume:
            meta = self.run.restore(model, self.optimizers)
            _match_state_layout(self.optimizers)
            self.step = int(meta["step"])
            if meta.get("scaler") and self.scaler.is_enabled():
                self.scaler.load_state_dict(meta["scaler"])
            dist.broadcast_model(model, world)

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def close(self) -> None:
        """Release the run folder (fit does this itself)."""
        self.run.close()

    # -- the step ------------------------------------------------------------------------------
    @contextmanager
    def _draws(self, stream: int) -> Iterator[None]:
        """Draw from the RNG seeded by (seed, step, stream): the same numbers in every
        process, at any number of processes, and after a resume; the outer RNG is untouched."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(_step_seed(self.config.train.seed, self.step, stream))
            yield

    def _update(self, name: str, loss: torch.Tensor, params: list, average: bool = False) -> None:
        """Backward ``loss`` and step optimiser ``name``; ``average``: average the gradients
        over ranks first (for parameters that DDP does not hold, i.e. the critic)."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if average:
            dist.average_gradients(params, self.world)
        if self.config.train.grad_clip is not None:
            self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, self.config.train.grad_clip)
        self.scaler.step(opt)

    def train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step on batch ``x`` (n, C, H, W), this rank's share of the global batch of N.

        Returns the mean of each loss term as a device scalar (nothing is read back)."""
        cfg, model, world = self.config.train, self.model, self.world
        factor = lr_factor(cfg, self.step, self.steps_per_epoch, self.total_steps)
        for group in self.optimizers["ae"].param_groups:
            group["lr"] = cfg.lr * factor
        x = x.contiguous(memory_format=self.precision.memory_format)
        n_global, d = x.shape[0] * world.size, self.config.model.latent_dim

        # Encode and decode once. A Gaussian encoder's noise is drawn for the global batch,
        # (N, d), and each rank takes its rows: the draws do not depend on the world size.
        eps = None
        if model.config.gaussian:
            with self._draws(_EPS):
                eps = dist.own_rows(torch.randn(n_global, d, device=self.device), world)
        with self.precision.autocast(self.device):
            post, recon = self.forward(x, eps)  # recon: (n,) costs; under DDP on several ranks

        # Adversarial models: one critic step on the codes (detached) against prior draws.
        terms_critic = {}
        if model.critic is not None:
            for group in self.optimizers["critic"].param_groups:
                group["lr"] = cfg.critic_lr * factor
            with self._draws(_CRITIC), self.precision.autocast(self.device):
                prior = dist.own_rows(model.sample_prior(n_global, like=post.z), world)
                critic_loss = model.critic_loss(post.z.detach(), prior)
            self._update("critic", critic_loss, model.critic_parameters(), world.size > 1)
            terms_critic["critic"] = critic_loss

        # Then one auto-encoder step: reconstruction + the penalty against the updated
        # critic, the penalty on the global batch of codes against N prior draws.
        with self._draws(_PENALTY), self.precision.autocast(self.device):
            prior = model.sample_prior(n_global, like=post.z)
            if world.size > 1 and self.config.distributed.global_batch_objective:
                post = dist.gather_posterior(post, world)
            else:  # one process, or the per-rank estimate: this rank's share of the draws
                prior = dist.own_rows(prior, world)
            terms = self.objective(recon, post, prior)
        self._update("ae", terms["loss"], model.autoencoder_parameters())
        self.scaler.update()  # once per step, after every optimiser stepped
        return {k: v.detach().float().mean() for k, v in {**terms, **terms_critic}.items()}

    # -- held-out loss and checkpoints -----------------------------------------------------
    @torch.no_grad()
    def holdout_loss(self) -> float | None:
        """Mean loss on the fixed held-out test images, with a fixed noise seed."""
        if self.holdout is None:
            return None
        self.model.eval()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(12345)
            x = self.holdout.contiguous(memory_format=self.precision.memory_format)
            with self.precision.autocast(self.device):
                loss = self.model.losses(x)["loss"]
        self.model.train()
        return float(loss)

    def _diverged(self, what: str) -> TrainingDiverged:
        """The error for a non-finite loss or weight, saying what is kept (if anything)."""
        if self.run.has_checkpoint():
            kept = f"the last good checkpoint is kept in {self.ckpt_dir}"
        else:
            kept = "no checkpoint was written before that"
        lr = self.config.train.lr / 10
        return TrainingDiverged(
            f"{what}; {kept}. Train again into a new --out with --set train.lr={lr:g} or "
            "--set train.grad_clip=1 (or --set train.precision=fp32)"
        )

    def _checkpoint(self) -> None:
        """Log the held-out loss and write last (and best) checkpoint; rank 0 writes."""
        if self.world.is_main:
            loss = self.holdout_loss()
            if loss is not None:
                if not math.isfinite(loss):
                    raise self._diverged(f"held-out loss is {loss} at step {self.step}")
                self.run.log({"kind": "eval", "step": self.step, "holdout_loss": loss})
            finite = torch.stack([torch.isfinite(p).all() for p in self.model.parameters()])
            if not bool(finite.all()):
                raise self._diverged(f"weights became NaN/inf by step {self.step}")
            extra = {
                "config": self.config.to_dict(),
                "world_size": self.world.size,
                "total_steps": self.total_steps,
                "precision": self.precision.describe(),
            }
            if self.scaler.is_enabled():
                extra["scaler"] = self.scaler.state_dict()
            self.run.checkpoint(self.model, self.optimizers, self.step, loss, extra)
        dist.barrier(self.world)

    def write_images(self) -> None:
        self.model.eval()
        self.run.images(self.model, self.step, self.holdout)
        self.model.train()

    # -- the loop ------------------------------------------------------------------------------
    def _header(self) -> list[str]:
        """config.yaml's comment lines: the effective length and how it computes."""
        cfg = self.config.train
        if cfg.steps:
            length = f"train.steps={cfg.steps} (set, so train.epochs is not used)"
        else:
            length = f"train.epochs={cfg.epochs:g} x {self.steps_per_epoch} steps an epoch"
        return [
            f"This run trains for {self.total_steps} steps: {length}.",
            f"Precision: {self.precision.describe()} ({self.precision.reason}) on "
            f"{self.device}; Adam {'fused' if fused_adam(self.device) else 'per tensor'}; "
            f"torch.compile {'on' if self.compiled else 'off'}.",
        ]

    def _record(self, window: LossWindow) -> dict[str, Any]:
        values = window.read(self.world)
        if not all(math.isfinite(v) for v in values.values()):
            bad = {k: v for k, v in values.items() if not math.isfinite(v)}
            raise self._diverged(
                f"loss terms became non-finite between steps {window.start} and {self.step}: {bad}"
            )
        dt = time.perf_counter() - window.t0
        cfg = self.config.train
        factor = lr_factor(cfg, self.step - 1, self.steps_per_epoch, self.total_steps)
        record = {
            "kind": "train",
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            **values,
            "lr": cfg.lr * factor,
            "images_per_s": (self.step - window.start) * cfg.batch_size / max(dt, 1e-9),
        }
        self.run.log(record)
        return record

    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def fit(self) -> Run | None:
        """Train to ``total_steps``; returns the loaded run (None on ranks other than 0)."""
        cfg = self.config.train
        shown = ("loss", "recon", "kl", "mmd", "adv", "sw", "critic", "images_per_s")
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not self.progress,
            desc=self.config.model.name,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        try:
            header = self._header()
            self.run.start(self.config, self.step, header)
            if self.world.is_main:
                print(f"training: {header[0]} {header[1]}", file=sys.stderr)
            ckpt_every = cfg.checkpoint_every or self.steps_per_epoch
            self.model.train()
            window = LossWindow(self.step)
            while self.step < self.total_steps:
                window.add(self.train_step(self.batches.batch(self.step)))
                self.step += 1
                bar.update(1)
                last_step = self.step == self.total_steps
                if (cfg.log_every and self.step % cfg.log_every == 0) or last_step:
                    record = self._record(window)  # the only read back to the host
                    window = LossWindow(self.step)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in shown})
                if (cfg.image_every and self.step % cfg.image_every == 0) or last_step:
                    self.write_images()
                if self.step % ckpt_every == 0 or last_step:
                    self._checkpoint()
                if dist.any_rank(self._stop_signal is not None, self.world):
                    name = signal.Signals(self._stop_signal or signal.SIGTERM).name
                    self._checkpoint()
                    raise TrainingInterrupted(
                        f"{name} received: checkpoint saved at step {self.step} in "
                        f"{self.ckpt_dir}; continue with --resume"
                    )
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.run.close()
        return load_run(self.out, device=str(self.device)) if self.world.is_main else None


def _match_state_layout(optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """Give restored moment tensors their parameter's memory layout (channels_last conv
    weights): the fused Adam kernel walks parameter and moments in the same memory order."""
    for opt in optimizers.values():
        for p, state in opt.state.items():
            for k, v in state.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def train(
    preset: str | None = None,
    config: RunConfig | None = None,
    out: str | Path = "runs/quickstart",
    overrides: list[str] = (),
    resume: bool = False,
    progress: bool = True,
) -> Run | None:
    """Train a preset (or a :class:`RunConfig`) into ``out`` and return the loaded run
    (None on the ranks other than 0 of a torchrun job).

    With ``resume`` and neither preset nor config, the run continues with its stored config;
    ``overrides`` may then extend it (train.steps, ...), see :data:`waekit.run.RESUMABLE_KEYS`.
    """
    from waekit.config import resolve_config

    if resume and preset is None and config is None:
        config = stored_config(out)  # config.yaml; the checkpoint's when it is missing
    config = resolve_config(preset=preset, config=config, overrides=overrides)
    with dist.process_group() as world:
        return Trainer(config, out, resume=resume, progress=progress, world=world).fit()
