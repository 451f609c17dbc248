"""Fixtures for the data tests: the shared real files, and a machine with no data and no network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from waekit.data import datasets, download

#: ``shared/`` lies beside the repository root (tests/data/ -> tests/ -> repository).
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "mnist").is_dir() or not (SHARED_DATA / "fashion-mnist").is_dir():
        pytest.skip(f"the shared real data folder {SHARED_DATA.resolve()} is absent")
    return SHARED_DATA.resolve()


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty data root, no system folders, and every mirror an unreachable loopback port."""
    dead = f"http://127.0.0.1:{closed_port()}/"
    monkeypatch.setattr(download, "MIRRORS", {k: [dead] for k in download.MIRRORS})
    monkeypatch.setattr(download, "TIMEOUT_S", 5.0)
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    root = tmp_path / "data-root"
    monkeypatch.setenv(datasets.DATA_ENV, str(root))
    return root
