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
