"""Training checkpoints as safetensors: weights, optimiser moments, RNG states, step, config.

Nothing is pickled: tensors go into the safetensors body, everything else (optimiser
hyper-parameters, step, best loss, the resolved config) into its JSON metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from waekit.errors import CheckpointError, brief
from waekit.io import load_tensors, recovery_hint, save_tensors

__all__ = ["save_checkpoint", "load_checkpoint", "optimizer_to_flat", "optimizer_from_flat"]


def optimizer_to_flat(
    opt: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser's state dict into tensors and JSON-able metadata."""
    state = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, param_state in state["state"].items():
        for key, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict, prefix: str
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith(prefix + "."):
            continue
        idx, key = name[len(prefix) + 1 :].split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for idx, extra in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(extra)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    step: int,
    extra: dict[str, Any],
) -> Path:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_meta = {}
    for name, opt in optimizers.items():
        t, m = optimizer_to_flat(opt, f"opt.{name}")
        tensors.update(t)
        opt_meta[name] = m
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    meta = {"step": json.dumps(step), "optimizers": json.dumps(opt_meta)}
    meta.update({k: json.dumps(v) for k, v in extra.items()})
    return save_tensors(tensors, path, meta)


def _check_meta(path: Path, meta: dict[str, Any]) -> None:
    """The metadata schema of a training checkpoint; a CheckpointError names the bad field."""
    step, opts = meta.get("step"), meta.get("optimizers")
    problems = []
    if not (isinstance(step, int) and not isinstance(step, bool) and step >= 0):
        problems.append(f"step {brief(step)} (expected a count)")
    if not isinstance(opts, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("param_groups"), list) for v in opts.values()
    ):
        problems.append(f"optimizers {brief(opts)} (expected name -> state)")
    best = meta.get("best_loss")
    if best is not None and not (isinstance(best, (int, float)) and not isinstance(best, bool)):
        problems.append(f"best_loss {brief(best)} (expected a number or null)")
    if "config" in meta and not isinstance(meta["config"], dict):
        problems.append(f"config {brief(meta['config'])} (expected a mapping)")
    if problems:
        raise CheckpointError(
            f"{path} has corrupt checkpoint metadata: {'; '.join(problems)}; {recovery_hint(path)}"
        )


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore model, optimisers and RNG from ``path``; returns the metadata (step, ...).

    The file is checked (:func:`waekit.io.load_tensors`: header, checksum, finite values) and
    so is its metadata, before the model or an optimiser is touched."""
    path = Path(path)
    tensors, meta = load_tensors(path)
    if "step" not in meta or "optimizers" not in meta:
        raise CheckpointError(
            f"{path} is not a waekit training checkpoint (no step/optimiser state)"
        )
    _check_meta(path, meta)
    missing = [name for name in optimizers if name not in meta["optimizers"]]
    if missing:
        raise CheckpointError(
            f"{path} has no state for optimiser {brief(missing[0])}; was it written for "
            "another model?"
        )
    if restore_rng and "rng.cpu" not in tensors:
        raise CheckpointError(f"{path} has no RNG state; {recovery_hint(path)}")
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} holds weights of a different model than the config describes: "
            f"{brief(str(exc), 300)}"
        ) from exc
    try:
        for name, opt in optimizers.items():
            # CPU tensors: Optimizer.load_state_dict moves each to its parameter's device.
            optimizer_from_flat(opt, tensors, meta["optimizers"][name], f"opt.{name}")
        if restore_rng:
            torch.set_rng_state(tensors["rng.cpu"])
            cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
            if cuda_states and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} has optimiser or RNG state that does not fit this model "
            f"({brief(str(exc))}); {recovery_hint(path)}"
        ) from exc
    return meta
