"""The public entry points: names, splits, arguments, the data root, list and verify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_writers import small_digits, write_celeba, write_cifar_batch, write_idx_split

from waekit.data import (
    DATASET_NAMES,
    ImageSet,
    data_root,
    datasets,
    list_datasets,
    load_dataset,
    verify_dataset,
)
from waekit.errors import DataError


def test_names_splits_and_arguments(offline: Path) -> None:
    assert DATASET_NAMES == (
        "mnist",
        "fashion-mnist",
        "celeba",
        "cifar10",
        "folder",
        "npz",
        "digits",
    )
    with pytest.raises(
        DataError,
        match=r"unknown data set 'svhn'; the data sets are: mnist, "
        r"fashion-mnist, celeba, cifar10, folder, npz, digits",
    ):
        load_dataset("svhn")
    with pytest.raises(DataError, match=r"mnist has no split 'val'; its splits are: train, test"):
        load_dataset("mnist", "val")
    with pytest.raises(DataError, match=r"limit=0 is invalid"):
        load_dataset("digits", limit=0)
    with pytest.raises(DataError, match=r"image_size=-3 is invalid"):
        load_dataset("digits", image_size=-3)
    assert load_dataset("Digits", "TEST", limit=np.int64(3)).images.shape == (3, 1, 28, 28)


def test_data_root_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAEKIT_DATA", str(tmp_path / "env"))
    assert data_root(str(tmp_path / "arg")) == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("WAEKIT_DATA")
    assert data_root() == Path.home() / ".cache" / "waekit" / "data"


def test_system_folder_is_searched(
    offline: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    write_idx_split(system, "test", *small_digits(6))
    monkeypatch.setitem(datasets.SYSTEM_DIRS, "fashion-mnist", [system])
    ds = load_dataset("fashion-mnist", "test", download=False)
    assert len(ds) == 6 and str(system) in ds.source and ds.classes[0] == "T-shirt/top"


def test_imageset_contract() -> None:
    images = np.zeros((4, 3, 8, 6), np.uint8)
    ds = ImageSet(images, np.arange(4), "x", "train", "here")
    assert ds.image_shape == (3, 8, 6) and len(ds) == 4 and ds.note is None
    with pytest.raises(DataError, match=r"images must be uint8 \(N, C, H, W\), got float32"):
        ImageSet(images.astype(np.float32), None, "x", "train", "here")
    with pytest.raises(DataError, match=r"4 images but labels of shape \(3,\)"):
        ImageSet(images, np.arange(3), "x", "train", "here")


def test_list_datasets(offline: Path) -> None:
    infos = {i.name: i for i in list_datasets()}
    assert set(infos) == set(DATASET_NAMES)
    assert not infos["mnist"].present and infos["mnist"].downloadable
    assert infos["mnist"].folder == offline / "mnist"
    assert "t10k-labels-idx1-ubyte.gz" in infos["mnist"].files
    assert not infos["celeba"].downloadable and infos["celeba"].splits == ("train", "valid", "test")
    assert infos["digits"].present and infos["folder"].folder is None
    write_idx_split(offline / "mnist", "train", *small_digits(3))
    write_idx_split(offline / "mnist", "test", *small_digits(3))
    assert list_datasets()[0].present and list_datasets()[0].found_in == offline / "mnist"


def test_verify_cifar_and_celeba(offline: Path) -> None:
    batches = offline / "cifar10" / "cifar-10-batches-py"
    images = np.zeros((2, 3, 32, 32), np.uint8)
    for i in range(1, 6):
        write_cifar_batch(batches / f"data_batch_{i}", images + i, [i, 0])
    write_cifar_batch(batches / "test_batch", images, [3, 3])
    report = verify_dataset("cifar10")
    assert report["splits"]["train"]["count"] == 10
    assert report["splits"]["train"]["classes"] == {0: 5, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    assert report["splits"]["train"]["pixel_mean"] == 3.0
    assert report["class_names"][0] == "airplane"
    assert report["checksums"][str(batches / "test_batch")].startswith(
        "does not match the official md5 (40351d587109b95175f43aff81a1287e); this file's md5 is "
    )
    assert "train has 10 images; the official release has 50,000" in report["warnings"]

    write_celeba(offline / "celeba", [(255, 0, 0), (0, 255, 0), (0, 0, 255)], [0, 1, 2])
    report = verify_dataset("celeba")
    assert {s: v["count"] for s, v in report["splits"].items()} == {
        "train": 1,
        "valid": 1,
        "test": 1,
    }
    assert abs(report["splits"]["train"]["pixel_mean"] - 85.0) < 1.0  # (255 + 0 + 0) / 3
    (offline / "celeba" / "img_align_celeba" / "000002.jpg").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"000002.jpg cannot be decoded as an image"):
        verify_dataset("celeba")


def test_verify_needs_the_files(offline: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"put train-images-idx3-ubyte.gz and "
        r"train-labels-idx1-ubyte.gz .*Verify reads only the files present and downloads nothing",
    ):
        verify_dataset("mnist")
    with pytest.raises(DataError, match=r"'npz' reads your own files: .* with `--path FILE.npz`"):
        verify_dataset("npz")
