import sys
from pathlib import Path

import pytest

# The run-folder and real-data helpers live beside the evaluation tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluate"))

from seed_metrics import SEED_METRICS, set_seed, write_metrics  # noqa: E402
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
