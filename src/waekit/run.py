"""A run folder: what training writes and what evaluation, reports and the CLI read.

Layout (files written atomically)::

    RUN_DIR/
      config.yaml              the resolved RunConfig (a comment header says how long the run
                               is and in which precision it trains)
      model.safetensors        latest model weights + metadata (waekit.load_model reads it)
      checkpoints/last.safetensors   full training state (weights, optimisers, RNG, step)
      checkpoints/best.safetensors   the state with the lowest held-out loss so far
      checkpoints/best-model.safetensors   its weights, as model.safetensors
      metrics.jsonl            one JSON object per line: {"kind": "train" | "eval", "step", ...}
      tb/                      TensorBoard events
      images/                  samples-STEP.png, recon-STEP.png grids
      .lock                    held (flock) by the one process that writes the folder
      metrics.json             written by ``waekit evaluate``
      report.html              written by ``waekit report``

:class:`RunWriter` is the writing side (used by :mod:`waekit.train`): the folder checks,
the lock, the resume policy, records, grids and the best/last checkpoint policy.
:func:`load_run` and :func:`read_metrics` are the reading side.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from waekit.checkpoint import load_checkpoint, save_checkpoint
from waekit.config import DataConfig, RunConfig, config_from_dict, read_yaml
from waekit.errors import CheckpointError, ConfigError, brief
from waekit.io import atomic_write_text, read_metadata
from waekit.models import LatentAutoEncoder, load_model, save_model

__all__ = [
    "Run",
    "RunWriter",
    "load_run",
    "load_data",
    "read_metrics",
    "resolve_device",
    "stored_config",
    "checkpoint_config",
    "resume_differences",
    "RESUMABLE_KEYS",
]

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = ".lock"
LAST = "checkpoints/last.safetensors"
BEST = "checkpoints/best.safetensors"
BEST_MODEL = "checkpoints/best-model.safetensors"

#: Keys that only extend or observe a run: a resumed run may change them. Any other key is
#: part of what the run is, and a resume that changes it is refused.
RESUMABLE_KEYS = frozenset(
    {
        "train.steps",
        "train.epochs",
        "train.log_every",
        "train.image_every",
        "train.checkpoint_every",
    }
)


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' is CUDA when one is present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device={device!r} but no CUDA device is available; use 'auto' or 'cpu'"
        )
    return torch.device(device)


def load_data(data: DataConfig, split: str | None = None, limit: int | None = None):
    """One split (default ``data.test_split``) of the data set a :class:`DataConfig` names,
    as uint8 images: the one place a config becomes data (training, evaluation, reports)."""
    from waekit.data import load_dataset

    return load_dataset(
        data.name,
        split=split or data.test_split,
        root=data.root,
        download=data.download,
        fallback=data.fallback,
        image_size=data.image_size,
        path=data.path,
        limit=limit,
    )


@dataclass
class Run:
    """A trained run: its folder, resolved config and model (in eval mode)."""

    dir: Path
    config: RunConfig
    model: LatentAutoEncoder

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.dir)

    def dataset(self, split: str | None = None):
        """The run's data set (uint8 images), by default its test split."""
        return load_data(self.config.data, split)


def load_run(run_dir: str | Path, device: str = "auto") -> Run:
    """Open a run folder written by ``waekit train``; errors name the missing piece."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(
            f"run folder {str(run_dir)!r} does not exist; pass the --out folder of `waekit train`"
        )
    cfg_path = run_dir / CONFIG_FILE
    model_path = run_dir / MODEL_FILE
    for p in (cfg_path, model_path):
        if not p.is_file():
            raise CheckpointError(
                f"{str(run_dir)!r} is not a complete run folder: {p.name} is missing "
                "(was training stopped before its first checkpoint?)"
            )
    config = read_run_config(cfg_path)
    model = load_model(model_path, device=resolve_device(device))
    return Run(dir=run_dir, config=config, model=model)


def _parse_record(line: str) -> dict[str, Any] | None:
    """A metrics.jsonl line as a record, or None for a torn, stray or garbled line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
        return None
    return record


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of RUN_DIR/metrics.jsonl; lines that are not a record with a numeric
    step (a torn last line from a crash, a stray edit) are skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [r for r in map(_parse_record, lines) if r is not None]


def _json_number(text: str | None) -> float | None:
    try:
        value = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# -- the stored config and the resume policy ---------------------------------------------------
def checkpoint_config(run_dir: str | Path) -> RunConfig | None:
    """The config recorded in a run folder's last checkpoint (what was trained), or None
    when there is no checkpoint."""
    last = Path(run_dir) / LAST
    if not last.is_file():
        return None
    raw = read_metadata(last).get("config")
    try:
        return config_from_dict(json.loads(raw))
    except (TypeError, json.JSONDecodeError, ConfigError) as exc:
        raise CheckpointError(
            f"{last} records no readable config ({brief(str(exc))}); it was not written by "
            "waekit train, or it is damaged"
        ) from exc


def read_run_config(path: Path) -> RunConfig:
    """A run folder's config.yaml; a damaged one is an error that names the file."""
    try:
        return config_from_dict(read_yaml(path))
    except ConfigError as exc:
        raise CheckpointError(f"{path} is not a valid run config: {exc}") from exc


def stored_config(run_dir: str | Path) -> RunConfig | None:
    """The config a run folder continues with: config.yaml, or when it is missing the one
    its last checkpoint records; None when the folder holds neither."""
    path = Path(run_dir) / CONFIG_FILE
    if path.is_file():
        return read_run_config(path)
    return checkpoint_config(run_dir)


def _flat(config: RunConfig) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, section in config.to_dict().items() for k, v in section.items()}


def resume_differences(stored: RunConfig, given: RunConfig) -> list[str]:
    """``key (stored OLD, given NEW)`` for each key outside :data:`RESUMABLE_KEYS` that
    differs; empty when ``given`` may continue the run."""
    old, new = _flat(stored), _flat(given)
    return [
        f"{k} (stored {brief(old.get(k))}, given {brief(new.get(k))})"
        for k in sorted(old.keys() | new.keys())
        if k not in RESUMABLE_KEYS and old.get(k) != new.get(k)
    ]


# -- the lock ---------------------------------------------------------------------------------
class RunLock:
    """An exclusive ``flock`` on RUN_DIR/.lock, which holds the writer's pid and what it is
    (``waekit train``, ``waekit evaluate``).

    The kernel drops the lock when its process ends, however it ends, so a lock file left by
    a killed process is free and is simply taken over. ``fix`` ends the refusal's sentence
    with what else the refused command can do.
    """

    def __init__(self, run_dir: Path, what: str = "waekit train", fix: str = ""):
        self.path = run_dir / LOCK_FILE
        self.what, self.fix = what, fix
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _unwritable(self.path.parent, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            held = os.pread(fd, 64, 0).decode(errors="replace").split(maxsplit=1)
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            pid = held[0] if held else "unknown"
            what = held[1].strip() if len(held) > 1 else "another waekit process"
            raise ConfigError(
                f"{self.path.parent} is being written by {what} (pid {pid}); "
                f"wait for it to end, stop it with `kill {pid}`{self.fix}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.what}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _unwritable(out: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"cannot write to the run folder {str(out)!r} ({exc.strerror or exc}); allow writing "
        f"with `chmod u+w {out}` or choose another --out"
    )


def _writable_folder(out: Path) -> None:
    """Refuse --out values that cannot hold a run, with one line each."""
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"--out {str(out)!r} is a file, not a folder; give a folder path, e.g. "
            f"--out {out.with_suffix('')}-run"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a parent is a file
        raise ConfigError(
            f"--out {str(out)!r} lies under a file, not a folder; choose another --out"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot create the run folder {str(out)!r} ({exc.strerror or exc}); choose another "
            "--out"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise _unwritable(out, PermissionError(errno.EACCES, "read-only"))


class RunWriter:
    """The writing side of a run folder, for the main process (elsewhere every method is a
    no-op): checks and locks the folder, writes config, records, grids and checkpoints.

    Opening checks everything that does not need the data, so a wrong --out is refused
    before the data set is read: a file or a read-only folder, a fresh run into a folder
    that holds one, a resume without a checkpoint, or with a config that differs from the
    stored one outside :data:`RESUMABLE_KEYS`.
    """

    def __init__(self, out: str | Path, config: RunConfig, resume: bool, main: bool = True):
        self.out = Path(out)
        self.main = main
        self.best_loss = math.inf
        self.writer = None
        self._lock = RunLock(self.out, "waekit train", ", or choose another --out")
        self._created = not self.out.exists()
        if not main:
            return
        _writable_folder(self.out)
        self._lock.acquire()
        try:
            self._check(config, resume)
        except BaseException:
            self.close(failed=True)
            raise

    def _check(self, config: RunConfig, resume: bool) -> None:
        last = self.out / LAST
        if not resume:
            if last.exists():
                raise ConfigError(
                    f"{self.out} already holds a run; pass --resume to continue it or choose "
                    "another --out folder"
                )
            return
        if not last.is_file():
            raise CheckpointError(
                f"--resume was given but {last} does not exist; start without --resume"
            )
        stored = checkpoint_config(self.out)
        differences = resume_differences(stored, config)
        if differences:
            raise ConfigError(
                f"--resume continues {self.out} as it was trained, but the config differs in "
                f"{'; '.join(differences)}. Only {', '.join(sorted(RESUMABLE_KEYS))} may "
                "change on resume: drop the other --set options, or train into a new --out"
            )

    # -- paths -------------------------------------------------------------------------------
    @property
    def last(self) -> Path:
        return self.out / LAST

    def has_checkpoint(self) -> bool:
        return self.last.is_file()

    # -- the run's start and end ---------------------------------------------------------------
    def start(self, config: RunConfig, step: int, header: list[str]) -> None:
        """Write config.yaml (``header`` as comments), drop records after ``step`` (redone
        on resume; all of them when a fresh run replaces one stopped before its first
        checkpoint), open TensorBoard."""
        if not self.main:
            return
        comments = "".join(f"# {line}\n" for line in header)
        atomic_write_text(self.out / CONFIG_FILE, comments + config.to_yaml())
        self._truncate_metrics(step)  # a fresh start (step 0) into a stopped run: all
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.out / "tb"), purge_step=step or None)

    def close(self, failed: bool = False) -> None:
        """Close TensorBoard and drop the lock; after a failed start, remove a folder that
        this writer created and left empty."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self._lock.release()
        if failed and self._created and self.main:
            self._lock.path.unlink(missing_ok=True)
            try:
                self.out.rmdir()
            except OSError:
                pass  # not empty: something worth keeping is in it

    # -- records ---------------------------------------------------------------------------
    def log(self, record: dict[str, Any]) -> None:
        if not self.main:
            return
        with open(self.out / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.writer.add_scalar(f"{record['kind']}/{k}", v, record["step"])

    def _truncate_metrics(self, step: int) -> None:
        """Keep the records up to ``step``; later ones are redone, garbled lines dropped."""
        path = self.out / METRICS_FILE
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        records = [_parse_record(line) for line in lines]
        dropped = sum(r is None for r in records)
        if dropped:
            print(f"{path}: dropped {dropped} line(s) that are not metric records", file=sys.stderr)
        keep = [line for line, r in zip(lines, records, strict=True) if r and r["step"] <= step]
        atomic_write_text(path, "".join(line + "\n" for line in keep))

    @torch.no_grad()
    def images(self, model: LatentAutoEncoder, step: int, real: torch.Tensor | None) -> None:
        """Grids of 64 prior samples (seed 0) and of 32 held-out images with their
        reconstructions, into images/ and TensorBoard."""
        if not self.main:
            return
        from waekit.report.grids import image_grid, reconstruction_grid, save_png

        g = torch.Generator().manual_seed(0)
        samples = model.sample(64, generator=g).float().cpu().numpy()
        save_png(image_grid(samples, 8), self.out / "images" / f"samples-{step:06d}.png")
        if real is not None:
            real = real[:32]
            recon = model.reconstruct(real).float().cpu().numpy()
            grid = reconstruction_grid(real.float().cpu().numpy(), recon, 8)
            save_png(grid, self.out / "images" / f"recon-{step:06d}.png")
        if self.writer is not None:
            self.writer.add_image("samples", image_grid(samples, 8), step, dataformats="HWC")

    # -- checkpoints: the best/last policy --------------------------------------------------
    def restore(self, model, optimizers) -> dict[str, Any]:
        """Load the last checkpoint into ``model`` and ``optimizers``; returns its metadata.
        The best loss to beat is the lower of what last and best record."""
        meta = load_checkpoint(self.last, model, optimizers, restore_rng=True)
        losses = [meta.get("best_loss")]
        if (self.out / BEST).is_file():
            losses.append(_json_number(read_metadata(self.out / BEST).get("best_loss")))
        finite = [float(v) for v in losses if isinstance(v, (int, float)) and math.isfinite(v)]
        self.best_loss = min(finite, default=math.inf)
        return meta

    def checkpoint(
        self,
        model: LatentAutoEncoder,
        optimizers: dict[str, torch.optim.Optimizer],
        step: int,
        holdout_loss: float | None,
        extra: dict[str, Any],
    ) -> None:
        """Write last (and, when ``holdout_loss`` is the lowest so far, best) checkpoint
        and model.safetensors. ``best_loss`` is updated before last is written, so a resumed
        run knows the best it must beat and never replaces best by a worse model."""
        if not self.main:
            return
        improved = holdout_loss is not None and holdout_loss < self.best_loss
        if improved:
            self.best_loss = holdout_loss
        state = {**extra, "best_loss": self.best_loss if math.isfinite(self.best_loss) else None}
        if improved:
            save_checkpoint(self.out / BEST, model, optimizers, step, state)
            save_model(model, self.out / BEST_MODEL)
        save_checkpoint(self.last, model, optimizers, step, state)
        save_model(model, self.out / MODEL_FILE)
