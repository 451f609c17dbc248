"""The shared real files: official counts, labels and pixel statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from waekit.data import load_dataset, verify_dataset
from waekit.data.download import file_md5

MNIST_TEST_COUNTS = {
    0: 980,
    1: 1135,
    2: 1032,
    3: 1010,
    4: 982,
    5: 892,
    6: 958,
    7: 1028,
    8: 974,
    9: 1009,
}


def test_mnist_test_is_the_official_split(shared_data: Path) -> None:
    ds = load_dataset("mnist", "test", root=shared_data, download=False)
    assert ds.images.shape == (10_000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.images.flags.c_contiguous and ds.image_shape == (1, 28, 28)
    assert ds.class_counts() == MNIST_TEST_COUNTS
    assert ds.labels.dtype == np.int64
    assert ds.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # mean pixel of the official test set: 0.13251 * 255
    assert abs(ds.images.mean(dtype=np.float64) - 33.7912) < 1e-3
    assert int(ds.images[0].sum()) == 18454 and ds.images.max() == 255
    assert ds.name == "mnist" and ds.split == "test" and ds.note is None


def test_mnist_train_holds_the_first_10000(shared_data: Path) -> None:
    ds = load_dataset("mnist", "train", root=shared_data, download=False)
    assert len(ds) == 10_000
    assert ds.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert sum(ds.class_counts().values()) == 10_000 and ds.class_counts()[1] == 1127
    assert abs(ds.images.mean(dtype=np.float64) - 33.4371) < 1e-3


def test_fashion_mnist_full(shared_data: Path) -> None:
    train = load_dataset("fashion-mnist", "train", root=shared_data, download=False)
    test = load_dataset("fashion-mnist", "test", root=shared_data, download=False)
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert train.class_counts() == {c: 6000 for c in range(10)}
    assert test.class_counts() == {c: 1000 for c in range(10)}
    assert abs(train.images.mean(dtype=np.float64) - 72.9404) < 1e-3  # 0.2860 * 255
    assert abs(test.images.mean(dtype=np.float64) - 73.1466) < 1e-3
    assert train.classes[9] == "Ankle boot" and test.labels[:5].tolist() == [9, 2, 1, 1, 6]


def test_limit_and_resize(shared_data: Path) -> None:
    full = load_dataset("mnist", "test", root=shared_data, download=False)
    ds = load_dataset("mnist", "test", root=shared_data, download=False, limit=25, image_size=14)
    assert ds.images.shape == (25, 1, 14, 14)
    assert ds.labels.tolist() == full.labels[:25].tolist()
    # an antialiased 2x reduction keeps the mean brightness within a few grey levels
    assert abs(ds.images.mean(dtype=np.float64) - full.images[:25].mean(dtype=np.float64)) < 2.0


def test_verify_reports_counts_and_checksums(shared_data: Path) -> None:
    report = verify_dataset("mnist", root=shared_data)
    assert report["splits"]["test"]["count"] == 10_000
    assert report["splits"]["test"]["classes"] == MNIST_TEST_COUNTS
    assert report["splits"]["train"]["count"] == 10_000
    checks = {Path(k).name: v for k, v in report["checksums"].items()}
    # the official checksum is compared with, never the file's own md5 shown as "official"
    assert checks["t10k-images-idx3-ubyte.gz"] == (
        "matches the official md5 (9fb629c4189551a2d022fa330f9573f3)"
    )
    assert checks["t10k-labels-idx1-ubyte.gz"] == (
        "matches the official md5 (ec29112dd5afa0611ce80d1b7f02629c)"
    )
    own = file_md5(shared_data / "mnist" / "train-images-idx3-ubyte.gz")
    assert checks["train-images-idx3-ubyte.gz"] == (
        f"does not match the official md5 (f68b3c2dcbeaaa9fbdd348bbdeb94873); this file's md5 "
        f"is {own}"
    )
    assert report["warnings"] == ["train has 10,000 images; the official release has 60,000"]
