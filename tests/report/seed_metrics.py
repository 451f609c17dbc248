"""Run folders with known metrics, for the multi-seed tests of compare (a module of its own:
test files import it by name, which a conftest cannot be, as each test folder has one)."""

from __future__ import annotations

# Known metric values of the seed-group runs (see seed_runs): {group: [per-seed metrics]}.
SEED_METRICS = {
    "wae-l2": [
        {"fid_samples": 10.0, "recon_cost": 3.0, "kid_samples": 0.01},
        {"fid_samples": 12.0, "recon_cost": 4.0, "kid_samples": 0.03},
        {"fid_samples": 17.0, "recon_cost": 8.0},  # one run without KID: its n is 2
    ],
    "wae-bce": [
        {"fid_samples": 20.0, "recon_cost": 100.0, "kid_samples": 0.5},
        {"fid_samples": 30.0, "recon_cost": 110.0, "kid_samples": 0.7},
    ],
}


def write_metrics(run_dir, values, n=16):
    """A metrics.json in evaluate_run's format holding the given values."""
    import json

    metrics = {
        name: {"value": v, "n": n, "split": "test", "seed": 0, "description": name}
        for name, v in values.items()
    }
    result = {
        "format": "waekit-metrics/1",
        "model": {"name": "wae-mmd", "latent_dim": 2},
        "data": {"name": "npz", "split": "test", "size": 40},
        "n": n,
        "seed": 0,
        "metrics": metrics,
        "skipped": {},
    }
    (run_dir / "metrics.json").write_text(json.dumps(result))


def set_seed(run_dir, seed, data_path=None):
    """Rewrite RUN/config.yaml with train.seed = seed (what `--seeds` varies), and data.path
    when given."""
    import dataclasses

    from waekit.config import config_from_dict, read_yaml

    path = run_dir / "config.yaml"
    config = config_from_dict(read_yaml(path))
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))
    if data_path is not None:
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, path=str(data_path))
        )
    path.write_text(config.to_yaml())
