import sys
from pathlib import Path

import pytest

# The run-folder and real-data helpers live beside the evaluation tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluate"))

from waekit_testruns import make_run, patch_npz_loader  # noqa: E402

from waekit.evaluate import evaluate_run  # noqa: E402
from waekit.evaluate.fid import inception_available  # noqa: E402
from waekit.report import write_report  # noqa: E402


@pytest.fixture
def use_npz_loader(monkeypatch):
    patch_npz_loader(monkeypatch)


@pytest.fixture(scope="session")
def evaluated_run(tmp_path_factory):
    """A tiny WAE-MMD run folder, evaluated (FID on 16 images when the network is there)
    and reported: (run_dir, metrics)."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        patch_npz_loader(mp)
        run_dir = make_run(root, "wae-small", "wae-mmd")
        metrics = evaluate_run(
            run_dir,
            n=16,
            device="cpu",
            fid=inception_available()[0],
            ot_n=16,
            cache_dir=root / "cache",
        )
        write_report(run_dir, device="cpu")
        yield run_dir, metrics


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


@pytest.fixture(scope="session")
def seed_runs(tmp_path_factory):
    """Two groups of run folders as `waekit train --seeds ... --out OUT` writes them:
    ROOT/wae-l2/seed-{0,1,2} (L2 cost x 0.05) and ROOT/wae-bce/seed-{0,1} (Bernoulli cost),
    with metrics.json files holding SEED_METRICS. Returns ROOT."""
    root = tmp_path_factory.mktemp("seeds")
    fields = {"wae-l2": {"recon_scale": 0.05}, "wae-bce": {"recon": "bernoulli"}}
    for group, per_seed in SEED_METRICS.items():
        for seed, values in enumerate(per_seed):
            run_dir = make_run(root / group, f"seed-{seed}", "wae-mmd", **fields[group])
            set_seed(run_dir, seed, data_path=root / "wae-l2" / "mnist-head.npz")
            write_metrics(run_dir, values)
    return root
