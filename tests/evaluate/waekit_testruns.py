"""Test helpers shared by tests/evaluate and tests/report: real MNIST / Fashion-MNIST test
images (read here with a few lines of gzip + numpy) and tiny run folders built from them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

import waekit
from waekit.config import DataConfig, RunConfig

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def read_idx(path: Path, n: int, header: int, shape: tuple[int, ...]) -> np.ndarray:
    """The first n records of an IDX .gz file: ``header`` bytes, then uint8 records."""
    if not path.is_file():
        pytest.skip(f"{path} is absent: the real-data tests need the shared data folder")
    size = int(np.prod(shape))
    with gzip.open(path, "rb") as f:
        raw = f.read(header + n * size)
    return np.frombuffer(raw, np.uint8, offset=header).reshape(n, *shape).copy()


def real_images(name: str, n: int) -> np.ndarray:
    """(n, 1, 28, 28) uint8 test images of 'mnist' or 'fashion-mnist'."""
    return read_idx(SHARED / "data" / name / "t10k-images-idx3-ubyte.gz", n, 16, (1, 28, 28))


def real_labels(name: str, n: int) -> np.ndarray:
    return read_idx(SHARED / "data" / name / "t10k-labels-idx1-ubyte.gz", n, 8, ()).astype(np.int64)


def make_run(
    root: Path, name: str, model_name: str, n_images: int = 400, net: str = "small", **fields
) -> Path:
    """A run folder with an untrained model, its config and a few metrics.jsonl lines; its
    data set is an npz of the first ``n_images`` real MNIST test images (the npz 'test'
    split is every tenth image)."""
    import torch

    torch.manual_seed(0)
    model = waekit.build_model(model_name, (1, 28, 28), 2, net, **fields)
    run_dir = root / name
    run_dir.mkdir(parents=True)
    waekit.save_model(model, run_dir / "model.safetensors")
    npz = root / "mnist-head.npz"
    if not npz.is_file():
        images = real_images("mnist", n_images)
        np.savez(npz, images=images[:, 0], labels=real_labels("mnist", n_images))
    config = RunConfig(model=model.config, data=DataConfig(name="npz", path=str(npz)))
    (run_dir / "config.yaml").write_text(config.to_yaml())
    lines = [
        {
            "kind": "train",
            "step": step,
            "loss": 60.0 / step,
            "recon": 50.0 / step,
            "mmd": 0.1 / step,
            "lr": 1e-3,
        }
        for step in (10, 20, 30, 40)
    ] + [{"kind": "eval", "step": 40, "holdout_loss": 2.0}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return run_dir


def patch_npz_loader(monkeypatch) -> None:
    """Run.dataset through waekit.data when it exists, else a stand-in reading the npz the
    same way (test = every tenth image)."""
    try:
        from waekit.data import load_dataset  # noqa: F401
    except ImportError:
        from types import SimpleNamespace

        from waekit.run import Run

        def dataset(self, split=None):
            split = split or self.config.data.test_split
            with np.load(self.config.data.path) as f:
                images, labels = f["images"][:, None], f["labels"].astype(np.int64)
            keep = (np.arange(len(images)) % 10 == 9) == (split == "test")
            return SimpleNamespace(
                images=images[keep], labels=labels[keep], name="npz", split=split
            )

        monkeypatch.setattr(Run, "dataset", dataset)
