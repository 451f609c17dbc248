"""A run folder: what training writes and what evaluation, reports and the CLI read.

Layout (all written atomically)::

    RUN_DIR/
      config.yaml              the resolved RunConfig
      model.safetensors        latest model weights + metadata (waekit.load_model reads it)
      model.json               the model's config and image shape
      checkpoints/last.safetensors   full training state (weights, optimisers, RNG, step)
      checkpoints/best.safetensors   the state with the lowest held-out loss so far
      metrics.jsonl            one JSON object per line: {"kind": "train" | "eval", "step", ...}
      tb/                      TensorBoard events
      images/                  samples-STEP.png, recon-STEP.png grids
      metrics.json             written by ``waekit evaluate``
      report.html              written by ``waekit report``
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from waekit.config import RunConfig, config_from_dict, read_yaml
from waekit.errors import CheckpointError, ConfigError
from waekit.models import LatentAutoEncoder, load_model

__all__ = ["Run", "load_run", "read_metrics", "resolve_device"]

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.jsonl"


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' is CUDA when one is present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device={device!r} but no CUDA device is available; use 'auto' or 'cpu'"
        )
    return torch.device(device)


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
        from waekit.data import load_dataset

        d = self.config.data
        return load_dataset(
            d.name,
            split=split or d.test_split,
            root=d.root,
            download=d.download,
            fallback=d.fallback,
            image_size=d.image_size,
            path=d.path,
        )


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
    try:
        config = config_from_dict(read_yaml(cfg_path))
    except ConfigError as exc:
        raise CheckpointError(f"{cfg_path} is not a valid run config: {exc}") from exc
    model = load_model(model_path, device=resolve_device(device))
    return Run(dir=run_dir, config=config, model=model)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of RUN_DIR/metrics.jsonl (a torn last line, from a crash, is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
