"""The training loop: data on the device, Adam, schedules, autocast, checkpoints, resume.

One :class:`Trainer` runs one :class:`~waekit.config.RunConfig` into one run folder
(layout in :mod:`waekit.run`). The adversarial schedule of WAE-GAN / AAE (one critic
step, then one auto-encoder step, per batch) lives in :meth:`Trainer.train_step` and
nowhere else.

Resuming is exact: the data order is a function of (seed, epoch), the learning rate a
function of the step, and every random draw of a step (prior samples, reparameterisation
noise, random projections) comes from the RNG re-seeded from (seed, step), so a run
stopped and resumed ends with the same weights as one that never stopped.

Under torchrun the same holds for any number of processes: the global batch and all of a
step's noise are those of one process, and each rank takes its share (multi-process
details and the gradient bookkeeping in :mod:`waekit.distributed`).
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from waekit import distributed as dist
from waekit.checkpoint import load_checkpoint, save_checkpoint
from waekit.config import RunConfig, TrainConfig
from waekit.errors import (
    CheckpointError,
    ConfigError,
    TrainingDiverged,
    TrainingInterrupted,
)
from waekit.generate import to_float
from waekit.io import atomic_write_text
from waekit.models import LatentAutoEncoder, Posterior, model_from_config, save_model
from waekit.run import CONFIG_FILE, METRICS_FILE, MODEL_FILE, Run, load_run, resolve_device

__all__ = ["Trainer", "train", "lr_factor", "DeviceBatches"]


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


#: Streams of a step's random draws, each from the RNG re-seeded by (seed, step, stream).
_EPS, _CRITIC, _PENALTY = 1, 2, 3


def _step_seed(seed: int, step: int, stream: int) -> int:
    """A well-mixed 63-bit seed for (train.seed, step, stream)."""
    state = np.random.SeedSequence([seed % 2**64, step, stream]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


@dataclass
class _Encoded(Posterior):
    """A batch's posterior and its per-image reconstruction cost ``recon`` (n,)."""

    recon: torch.Tensor | None = None


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


@dataclass
class _Precision:
    dtype: torch.dtype | None  # autocast dtype, None for fp32
    scaler: torch.amp.GradScaler | None

    def autocast(self, device: torch.device):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)


def _precision(name: str, device: torch.device) -> _Precision:
    if device.type != "cuda":
        if name in ("bf16", "fp16"):
            print(
                f"train.precision={name} needs a GPU; training in fp32 on {device}", file=sys.stderr
            )
        return _Precision(None, None)
    if name == "auto":
        name = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if name == "bf16":
        return _Precision(torch.bfloat16, None)
    if name == "fp16":
        return _Precision(torch.float16, torch.amp.GradScaler("cuda"))
    return _Precision(None, None)


def _adam(params: list, lr: float, betas: tuple[float, float], device: torch.device):
    fused = device.type == "cuda"
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused)


class Trainer:
    """Train ``config`` into ``out_dir``. ``resume`` continues from checkpoints/last."""

    def __init__(
        self,
        config: RunConfig,
        out_dir: str | Path,
        resume: bool = False,
        data=None,
        test_data=None,
        progress: bool = True,
    ):
        self.config = config
        self.out = Path(out_dir)
        self.resume = resume
        self.world = dist.World.from_env()
        self.progress = progress and self.world.is_main
        cfg = config.train
        self.device = self.world.device if self.world.size > 1 else resolve_device(cfg.device)
        self.precision = _precision(cfg.precision, self.device)

        train_set, test_set = data, test_data
        if train_set is None:
            with dist.main_first(self.world):  # one download, not one per process
                train_set, test_set = _load_data(config)
        self.train_set, self.test_set = train_set, test_set
        if getattr(train_set, "note", None) and self.world.is_main:
            print(train_set.note, file=sys.stderr)

        torch.manual_seed(cfg.seed)
        self.model: LatentAutoEncoder = model_from_config(config.model, train_set.image_shape)
        if self.world.size > 1 and config.distributed.sync_batch_norm:
            self.model = _sync_batch_norm(self.model, self.device)
        self.model.to(self.device)
        dist.broadcast_model(self.model, self.world)  # the critic is outside DDP's own broadcast
        self.optimizers = {
            "ae": _adam(self.model.autoencoder_parameters(), cfg.lr, cfg.betas, self.device)
        }
        if self.model.critic is not None:
            self.optimizers["critic"] = _adam(
                self.model.critic_parameters(), cfg.critic_lr, cfg.critic_betas, self.device
            )
        self.ddp = dist.wrap(_AutoEncoderPass(self.model), self.world)

        array = np.ascontiguousarray(train_set.images)
        if not array.flags.writeable:  # a read-only memory map: torch wants its own copy
            array = array.copy()
        images = torch.from_numpy(array).to(self.device)
        self.batches = DeviceBatches(
            images, cfg.batch_size, cfg.seed, self.world.rank, self.world.size
        )
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.total_steps = cfg.steps or max(1, round(cfg.epochs * self.steps_per_epoch))
        self.holdout = self._holdout_batch()
        self.step = 0
        self.best_loss = math.inf
        self._stop_signal: int | None = None
        self._forward = self._compiled(self.ddp)
        self._objective = self._compiled(self.model.objective)
        self._loss_fn: Callable[[torch.Tensor, _Encoded], dict[str, torch.Tensor]]
        self._loss_fn = self._global_losses
        if resume:
            self._restore()

    # -- set-up helpers --------------------------------------------------------------------
    def _holdout_batch(self) -> torch.Tensor | None:
        n = self.config.train.holdout
        if n == 0 or self.test_set is None:
            return None
        return to_float(self.test_set.images[:n], self.device)

    def _compiled(self, fn: Callable) -> Callable:
        mode = self.config.train.compile
        use = mode == "on" or (mode == "auto" and self.device.type == "cuda")
        return torch.compile(fn) if use else fn

    # -- the step ------------------------------------------------------------------------------
    def _lr(self, step: int) -> float:
        return lr_factor(self.config.train, step, self.steps_per_epoch, self.total_steps)

    @contextmanager
    def _seeded(self, stream: int) -> Iterator[None]:
        """Draw from the RNG seeded by (seed, step, stream): the same numbers in every
        process, at any number of processes, and after a resume; the outer RNG is untouched."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(_step_seed(self.config.train.seed, self.step, stream))
            yield

    def _global_draws(self, n_local: int) -> tuple[int, int]:
        """(global batch size, latent dimension) of this step's draws."""
        return n_local * self.world.size, self.config.model.latent_dim

    def _global_losses(self, x: torch.Tensor, enc: _Encoded) -> dict[str, torch.Tensor]:
        """Loss terms of this rank's images; the penalty on the global batch of codes.

        With ``distributed.global_batch_objective`` the codes of all ranks are gathered and
        compared with all N prior draws (the gradient bookkeeping is in
        :mod:`waekit.distributed`); otherwise each rank's m = N / K codes are compared with
        its share of the draws (the per-rank estimate).
        """
        with self._seeded(_PENALTY):
            prior = self.model.sample_prior(self._global_draws(x.shape[0])[0], like=enc.z)
            post: Posterior = enc
            if self.world.size > 1:
                if self.config.distributed.global_batch_objective:
                    post = _gather_posterior(enc, self.world)
                else:
                    prior = dist.own_rows(prior, self.world)
            return self._objective(enc.recon, post, prior)

    def _optimizer_step(
        self, name: str, loss: torch.Tensor, params: list, average: bool = False
    ) -> None:
        """Backward and step; ``average``: average the gradients over ranks first (for
        parameters that DDP does not hold)."""
        opt = self.optimizers[name]
        scaler = self.precision.scaler
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        if average:
            dist.average_gradients(params, self.world)
        if scaler is not None:
            scaler.unscale_(opt)
        if self.config.train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.config.train.grad_clip)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()

    def train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step on batch ``x`` (this rank's share of the global batch): encode and
        decode once; for adversarial models one critic step on the batch's codes (detached)
        against prior draws; then one auto-encoder step against the updated critic."""
        factor = self._lr(self.step)
        for name, opt in self.optimizers.items():
            base = self.config.train.lr if name == "ae" else self.config.train.critic_lr
            for group in opt.param_groups:
                group["lr"] = base * factor
        model = self.model
        n_global, d = self._global_draws(x.shape[0])
        eps = None
        if model.config.gaussian:
            with self._seeded(_EPS):  # (N, d) for the global batch; this rank's rows
                eps = dist.own_rows(torch.randn(n_global, d, device=self.device), self.world)
        with self.precision.autocast(self.device):
            post, recon = self._forward(x, eps)
        enc = _Encoded(z=post.z, mu=post.mu, logvar=post.logvar, recon=recon)
        if model.critic is not None:
            with self._seeded(_CRITIC), self.precision.autocast(self.device):
                prior = dist.own_rows(model.sample_prior(n_global, like=post.z), self.world)
                critic_loss = dist.critic_loss(
                    model, post.z.detach(), self.world, self.config, prior
                )
            self._optimizer_step(
                "critic", critic_loss, model.critic_parameters(), average=self.world.size > 1
            )
        with self.precision.autocast(self.device):
            terms = self._loss_fn(x, enc)
        self._optimizer_step("ae", terms["loss"], model.autoencoder_parameters())
        out = {k: v.detach().mean() for k, v in terms.items()}
        if model.critic is not None:
            out["critic"] = critic_loss.detach()
        return out

    # -- checkpoints -----------------------------------------------------------------------
    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def _state_extra(self) -> dict[str, Any]:
        return {
            "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
            "config": self.config.to_dict(),
            "world_size": self.world.size,
        }

    def _params_finite(self) -> bool:
        return all(torch.isfinite(p).all() for p in self.model.parameters())

    def save(self, holdout_loss: float | None = None) -> None:
        """Write last (and best) checkpoint and model.safetensors; rank 0 only."""
        if not self.world.is_main:
            return
        if not self._params_finite():
            raise TrainingDiverged(
                f"weights became NaN/inf by step {self.step}; not overwriting the last good "
                f"checkpoint in {self.ckpt_dir}. Lower train.lr or set train.grad_clip."
            )
        last = self.ckpt_dir / "last.safetensors"
        save_checkpoint(last, self.model, self.optimizers, self.step, self._state_extra())
        save_model(self.model, self.out / MODEL_FILE)
        if holdout_loss is not None and holdout_loss < self.best_loss:
            self.best_loss = holdout_loss
            save_checkpoint(
                self.ckpt_dir / "best.safetensors",
                self.model,
                self.optimizers,
                self.step,
                self._state_extra(),
            )
            save_model(self.model, self.ckpt_dir / "best-model.safetensors")

    def _restore(self) -> None:
        last = self.ckpt_dir / "last.safetensors"
        if not last.is_file():
            raise CheckpointError(
                f"--resume was given but {last} does not exist; start without --resume"
            )
        # A step's noise depends on (seed, step) only and the batch is the global one, so the
        # run continues the same at any number of processes.
        meta = load_checkpoint(last, self.model, self.optimizers, restore_rng=True)
        self.step = int(meta["step"])
        self.best_loss = meta.get("best_loss") or math.inf
        dist.broadcast_model(self.model, self.world)

    # -- logging -------------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        if not self.world.is_main:
            return
        with open(self.out / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.writer.add_scalar(f"{record['kind']}/{k}", v, record["step"])

    def _truncate_metrics(self) -> None:
        """On resume, drop records written after the checkpoint (they will be redone)."""
        path = self.out / METRICS_FILE
        if not path.is_file() or not self.world.is_main:
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= self.step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue
        atomic_write_text(path, "".join(line + "\n" for line in keep))

    @torch.no_grad()
    def holdout_loss(self) -> float | None:
        """Mean loss on the fixed held-out test images, with a fixed noise seed."""
        if self.holdout is None:
            return None
        self.model.eval()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(12345)
            terms = self.model.losses(self.holdout)
        self.model.train()
        return float(terms["loss"])

    @torch.no_grad()
    def write_images(self) -> None:
        if not self.world.is_main:
            return
        from waekit.report.grids import image_grid, reconstruction_grid, save_png

        self.model.eval()
        g = torch.Generator().manual_seed(0)
        samples = self.model.sample(64, generator=g).float().cpu().numpy()
        img_dir = self.out / "images"
        save_png(image_grid(samples, 8), img_dir / f"samples-{self.step:06d}.png")
        if self.holdout is not None:
            real = self.holdout[:32]
            recon = self.model.reconstruct(real)
            grid = reconstruction_grid(real.cpu().numpy(), recon.float().cpu().numpy(), 8)
            save_png(grid, img_dir / f"recon-{self.step:06d}.png")
        if self.writer is not None:
            self.writer.add_image("samples", image_grid(samples, 8), self.step, dataformats="HWC")
        self.model.train()

    # -- the loop --------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def fit(self) -> Run:
        cfg = self.config.train
        self.out.mkdir(parents=True, exist_ok=True)
        if self.world.is_main:
            if not self.resume and (self.ckpt_dir / "last.safetensors").exists():
                raise ConfigError(
                    f"{self.out} already holds a run; pass --resume to continue it or choose "
                    "another --out folder"
                )
            atomic_write_text(self.out / CONFIG_FILE, self.config.to_yaml())
        if self.resume:
            self._truncate_metrics()
        self.writer = None
        if self.world.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tb"), purge_step=self.step or None)

        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        ckpt_every = cfg.checkpoint_every or self.steps_per_epoch
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not self.progress,
            desc=self.config.model.name,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        self.model.train()
        window: list[dict[str, torch.Tensor]] = []
        t0, n0 = time.perf_counter(), self.step
        try:
            while self.step < self.total_steps:
                x = self.batches.batch(self.step)
                window.append(self.train_step(x))
                self.step += 1
                bar.update(1)
                last_step = self.step == self.total_steps
                if (cfg.log_every and self.step % cfg.log_every == 0) or last_step:
                    record = self._read_window(window, t0, n0)
                    window, t0, n0 = [], time.perf_counter(), self.step
                    bar.set_postfix(
                        {
                            k: f"{v:.4g}"
                            for k, v in record.items()
                            if k
                            in ("loss", "recon", "kl", "mmd", "adv", "sw", "critic", "images_per_s")
                        }
                    )
                if (cfg.image_every and self.step % cfg.image_every == 0) or last_step:
                    self.write_images()
                if self.step % ckpt_every == 0 or last_step:
                    self._checkpoint()
                if dist.any_rank(self._stop_signal is not None, self.world):
                    self._stop_signal = self._stop_signal or signal.SIGTERM
                    self._checkpoint()
                    name = signal.Signals(self._stop_signal).name
                    raise TrainingInterrupted(
                        f"{name} received: checkpoint saved at step {self.step} "
                        f"in {self.ckpt_dir}; "
                        f"continue with --resume"
                    )
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
            if self.writer is not None:
                self.writer.close()
        return load_run(self.out, device=str(self.device)) if self.world.is_main else None

    def _read_window(self, window: list[dict[str, torch.Tensor]], t0: float, n0: int) -> dict:
        """Read the accumulated loss terms back to the host (the only sync of the loop)."""
        stacked = {k: torch.stack([w[k] for w in window]).mean() for k in window[0]}
        values = {k: float(v) for k, v in dist.average_scalars(stacked, self.world).items()}
        if not all(math.isfinite(v) for v in values.values()):
            bad = {k: v for k, v in values.items() if not math.isfinite(v)}
            raise TrainingDiverged(
                f"loss terms became non-finite between steps {n0} and {self.step}: {bad}. "
                f"The last good checkpoint is kept in {self.ckpt_dir}; lower train.lr, set "
                f"train.grad_clip, or use train.precision=fp32, then --resume."
            )
        dt = time.perf_counter() - t0
        record = {
            "kind": "train",
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            **values,
            "lr": self.config.train.lr * self._lr(self.step - 1),
            "images_per_s": (self.step - n0) * self.config.train.batch_size / max(dt, 1e-9),
        }
        self._log(record)
        return record

    def _checkpoint(self) -> None:
        loss = self.holdout_loss() if self.world.is_main else None
        if loss is not None:
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"held-out loss is {loss} at step {self.step}; the last good checkpoint is "
                    f"kept in {self.ckpt_dir}. Lower train.lr or set train.grad_clip."
                )
            self._log({"kind": "eval", "step": self.step, "holdout_loss": loss})
        self.save(loss)
        dist.barrier(self.world)


def _gather_posterior(enc: Posterior, world: dist.World) -> Posterior:
    """The posterior of the global batch: z (and mu, logvar) of all ranks in one gather."""
    parts = [enc.z] if enc.logvar is None else [enc.z, enc.mu, enc.logvar]
    whole = dist.gather_rows(torch.cat(parts, dim=1), world).split(enc.z.shape[1], dim=1)
    if enc.logvar is None:
        return Posterior(z=whole[0], mu=whole[0])
    return Posterior(z=whole[0], mu=whole[1], logvar=whole[2])


def _sync_batch_norm(model: LatentAutoEncoder, device: torch.device) -> LatentAutoEncoder:
    """Batch norm over the global batch (SyncBatchNorm), which PyTorch runs on GPUs only."""
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if has_bn and device.type != "cuda":
        raise ConfigError(
            "distributed.sync_batch_norm=true needs GPUs: PyTorch's SyncBatchNorm does not run "
            f"on {device.type}. Set distributed.sync_batch_norm=false (each process then "
            "normalises over its own share of the batch), or use model.batch_norm=false"
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def _load_data(config: RunConfig):
    from waekit.data import load_dataset

    d = config.data
    kwargs = dict(
        root=d.root, download=d.download, fallback=d.fallback, image_size=d.image_size, path=d.path
    )
    train_set = load_dataset(d.name, split="train", limit=d.limit, **kwargs)
    try:
        test_set = load_dataset(d.name, split=d.test_split, **kwargs)
    except Exception as exc:  # a data set without a test split still trains
        print(f"no held-out split ({exc}); the best checkpoint is not tracked", file=sys.stderr)
        test_set = None
    return train_set, test_set


def train(
    preset: str | None = None,
    config: RunConfig | None = None,
    out: str | Path = "runs/quickstart",
    overrides: list[str] = (),
    resume: bool = False,
    progress: bool = True,
) -> Run:
    """Train a preset (or a :class:`RunConfig`) into ``out`` and return the loaded run."""
    from waekit.config import resolve_config

    saved = Path(out) / CONFIG_FILE if resume else None  # a resumed run continues as it was
    config = resolve_config(preset=preset, config=config, overrides=overrides, saved=saved)
    return Trainer(config, out, resume=resume, progress=progress).fit()
