"""Suite-wide: say at the top of every run which optional resources are missing, and so which
tests will be skipped, instead of leaving it to the short summary of -ra."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from pathlib import Path

#: The real MNIST and Fashion-MNIST files lie in ``shared/data`` beside the repository.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@functools.cache
def missing_resources() -> tuple[str, ...]:
    """One line per optional resource that is absent, with what it costs and how to add it
    (looked up once: the header and the summary both print it)."""
    missing = []
    if not (SHARED_DATA / "mnist").is_dir():
        missing.append(
            f"real MNIST / Fashion-MNIST files are absent ({SHARED_DATA}): the tests on real "
            "digits are skipped; put the official .gz files in shared/data/mnist and "
            "shared/data/fashion-mnist beside the repository to run them"
        )
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        missing.append(
            "chromium is not installed: the report's browser tests are skipped; "
            "install it with: apt-get install -y chromium"
        )
    if importlib.util.find_spec("torch_fidelity") is None:
        missing.append(
            "torch-fidelity is not installed: the cross-checks of KID, precision/recall and "
            "FID against it are skipped; install it with: "
            "python3 -m pip install --no-deps torch-fidelity==0.4.0"
        )
    try:
        from waekit.evaluate.fid import inception_available

        ok, why = inception_available()
        if not ok:
            missing.append(f"the FID Inception network is unavailable ({why}): FID tests skipped")
    except ImportError:
        pass
    return tuple(missing)


def pytest_report_header(config) -> list[str]:
    missing = missing_resources()
    if not missing:
        return [
            "optional resources: real data, chromium, the Inception network and torch-fidelity "
            "all present"
        ]
    return [f"SKIPPING SOME TESTS: {line}" for line in missing]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    for line in missing_resources():
        terminalreporter.write_line(f"note: {line}", yellow=True)


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (pyproject's default): one worker per core, at most 4 (each holds its own
    torch, and a few tests start processes of their own)."""
    return max(1, min(4, os.cpu_count() or 1))


def pytest_configure(config) -> None:
    """Under pytest-xdist, each worker and the processes it starts use one thread, so that
    the workers share the cores instead of oversubscribing them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)
