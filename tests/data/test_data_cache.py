"""The prepared cache: written atomically, memory-mapped, keyed by (split, size), never stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_writers import small_digits, write_idx_split

from waekit.data import cache, list_datasets, load_dataset, prepare_dataset
from waekit.errors import DataError


@pytest.fixture
def release(offline: Path) -> dict[str, np.ndarray]:
    train_images, train_labels = small_digits(30, seed=1)
    test_images, test_labels = small_digits(10, seed=2)
    write_idx_split(offline / "mnist", "train", train_images, train_labels)
    write_idx_split(offline / "mnist", "test", test_images, test_labels)
    return {"train": train_images, "test": test_images, "train_labels": train_labels}


def _prepared(offline: Path) -> list[str]:
    return sorted(p.name for p in (offline / "mnist" / "prepared").iterdir())


def test_prepare_then_load_maps_the_cache(offline: Path, release: dict) -> None:
    paths = prepare_dataset("mnist")
    names = _prepared(offline)
    assert {p.name for p in paths} == set(names) and len(names) == 6  # 2 splits x 3 files
    assert "train-28px.json" in names and "test-28px.json" in names
    ds = load_dataset("mnist", "train", limit=12)
    assert isinstance(ds.images, np.memmap) and not ds.images.flags.writeable
    assert ds.images.flags.c_contiguous and ds.images.shape == (12, 1, 28, 28)
    assert np.array_equal(ds.images[:, 0], release["train"][:12])
    assert ds.labels.tolist() == release["train_labels"][:12].tolist()
    assert "prepared: " in ds.source and ds.classes[3] == "3"
    assert list_datasets()[0].prepared == ("test-28px", "train-28px")
    assert {p.name for p in prepare_dataset("mnist")} == set(names)  # kept as it is


def test_size_is_part_of_the_key(offline: Path, release: dict) -> None:
    prepare_dataset("mnist", image_size=14)
    assert "train-14px.json" in _prepared(offline)
    small = load_dataset("mnist", "train", image_size=14)
    assert isinstance(small.images, np.memmap) and small.images.shape == (30, 1, 14, 14)
    native = load_dataset("mnist", "train")
    assert not isinstance(native.images, np.memmap) and native.images.shape == (30, 1, 28, 28)


def test_changed_source_makes_the_cache_stale(offline: Path, release: dict) -> None:
    prepare_dataset("mnist")
    before = set(_prepared(offline))
    new_images, new_labels = small_digits(12, seed=7)
    write_idx_split(offline / "mnist", "train", new_images, new_labels)
    ds = load_dataset("mnist", "train")
    assert len(ds) == 12 and np.array_equal(ds.images[:, 0], new_images)
    prepare_dataset("mnist")
    after = set(_prepared(offline))
    assert len(after) == 6 and after != before  # rebuilt; the old arrays removed
    assert len(load_dataset("mnist", "train")) == 12


def test_damaged_cache_is_ignored(offline: Path, release: dict) -> None:
    prepare_dataset("mnist")
    images_file = next((offline / "mnist" / "prepared").glob("test-28px.*.images.npy"))
    images_file.write_bytes(images_file.read_bytes()[:100])
    ds = load_dataset("mnist", "test")
    assert not isinstance(ds.images, np.memmap) and np.array_equal(ds.images[:, 0], release["test"])


def test_failed_write_leaves_the_old_cache(
    offline: Path, release: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_dataset("mnist", image_size=28)
    record = offline / "mnist" / "prepared" / "train-28px.json"
    old_record = record.read_text()
    os.utime(offline / "mnist" / "train-images-idx3-ubyte.gz", ns=(1, 1))  # make it stale

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.np, "save", disk_full)
    with pytest.raises(DataError, match=r"cannot write the prepared cache in .*No space left"):
        prepare_dataset("mnist")
    assert record.read_text() == old_record
    assert not [n for n in _prepared(offline) if n.endswith(".part")]


def test_nothing_to_prepare_for_path_data_sets(offline: Path) -> None:
    with pytest.raises(DataError, match=r"folder has no prepared cache: .*your own files"):
        prepare_dataset("folder")
    with pytest.raises(DataError, match=r"digits has no prepared cache: .*from mnist_5k.csv.gz"):
        prepare_dataset("digits")


def test_a_killed_writers_partial_files_are_removed_by_the_next(
    offline: Path, release: dict
) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # its pid is now free: the writer of the orphan is gone
    prepared = offline / "mnist" / "prepared"
    prepared.mkdir(parents=True)
    orphan = prepared / f".train-28px.images.npy.{proc.pid}.x1y2.part"
    orphan.write_bytes(b"\x93NUMPY half a cache")
    prepare_dataset("mnist")
    assert not orphan.exists()
    assert not [n for n in _prepared(offline) if n.endswith(".part")]
    assert load_dataset("mnist", "train").images.shape == (30, 1, 28, 28)
