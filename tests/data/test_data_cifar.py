"""CIFAR-10 python batches: layout, the restricted unpickler, and damaged files."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from data_writers import py2_batch_bytes, write_cifar_batch
from hypothesis import given, settings
from hypothesis import strategies as st

from waekit.data import load_dataset
from waekit.data.cifar import read_batch, restricted_loads
from waekit.errors import DataError


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def _write_release(batches: Path, per_batch: int = 4) -> tuple[np.ndarray, np.ndarray]:
    train = [_images(per_batch, i) for i in range(5)]
    for i, images in enumerate(train, 1):
        labels = [(i + k) % 10 for k in range(per_batch)]
        write_cifar_batch(batches / f"data_batch_{i}", images, labels)
    test = _images(per_batch, 99)
    write_cifar_batch(batches / "test_batch", test, [9] * per_batch)
    return np.concatenate(train), test


def test_train_and_test_splits(offline: Path) -> None:
    train, test = _write_release(offline / "cifar10" / "cifar-10-batches-py")
    ds = load_dataset("cifar10", "train", download=False)
    assert ds.images.shape == (20, 3, 32, 32) and ds.images.flags.c_contiguous
    assert np.array_equal(ds.images, train)
    assert ds.labels.tolist() == [1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6, 4, 5, 6, 7, 5, 6, 7, 8]
    assert ds.classes[3] == "cat"
    ts = load_dataset("cifar10", "test", download=False)
    assert np.array_equal(ts.images, test) and ts.class_counts() == {9: 4}


def test_row_layout_is_red_green_blue_planes(tmp_path: Path) -> None:
    # the official row: 1024 red values, then 1024 green, then 1024 blue, each row-major
    row = np.zeros(3072, np.uint8)
    row[0], row[1024 + 33], row[2048 + 1023] = 10, 20, 30
    batch = {b"data": row[None], b"labels": [0]}
    (tmp_path / "b").write_bytes(pickle.dumps(batch))
    images, _ = read_batch(tmp_path / "b")
    assert images[0, 0, 0, 0] == 10 and images[0, 1, 1, 1] == 20 and images[0, 2, 31, 31] == 30
    assert int(images.sum()) == 60


def test_python2_pickle_as_in_the_official_files(tmp_path: Path) -> None:
    data = np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072)
    (tmp_path / "data_batch_1").write_bytes(py2_batch_bytes(data, [3, 8]))
    images, labels = read_batch(tmp_path / "data_batch_1")
    assert np.array_equal(images.reshape(2, 3072), data) and labels.tolist() == [3, 8]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_every_pickle_protocol_loads(tmp_path: Path, protocol: int) -> None:
    images = _images(3, 1)
    write_cifar_batch(tmp_path / "b", images, [1, 2, 3], protocol=protocol)
    got, labels = read_batch(tmp_path / "b")
    assert np.array_equal(got, images) and labels.tolist() == [1, 2, 3]


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Exploit(marker), b"labels": []}))
    refused = r"refusing to load the global (posix|os|nt)\.system"
    with pytest.raises(DataError, match=refused) as info:
        read_batch(path)
    assert str(path) in str(info.value)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        restricted_loads(pickle.dumps(eval))


def test_not_the_expected_structure(tmp_path: Path) -> None:
    cases = {
        "list": ([1, 2, 3], r"expected a dict .* got a list"),
        "nokey": ({b"labels": [0]}, r"the key 'data' is missing"),
        "shape": (
            {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
            r'b"data" must be a \(N, 3072\) uint8 array, got uint8 \(2, 100\)',
        ),
        "dtype": (
            {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},
            r"got float32 \(2, 3072\)",
        ),
        "count": (
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
            r'b"labels" must hold 2 ints \(one per image\), got int64 \(1,\)',
        ),
        "range": (
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
            r"labels must be in 0..9, found 0..10",
        ),
    }
    for name, (obj, pattern) in cases.items():
        path = tmp_path / name
        path.write_bytes(pickle.dumps(obj))
        with pytest.raises(DataError, match=pattern) as info:
            read_batch(path)
        assert str(path) in str(info.value)


def test_truncated_pickle(tmp_path: Path) -> None:
    path = tmp_path / "test_batch"
    write_cifar_batch(path, _images(2, 0), [0, 1])
    path.write_bytes(path.read_bytes()[:500])
    damaged = r"test_batch is not a readable pickle .*truncated or damaged"
    with pytest.raises(DataError, match=damaged):
        read_batch(path)


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_tarball_is_extracted_safely(offline: Path, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    train, test = _write_release(staging, per_batch=2)
    tarball = offline / "cifar10" / "cifar-10-python.tar.gz"
    tarball.parent.mkdir(parents=True)
    with tarfile.open(tarball, "w:gz") as tar:
        for f in sorted(staging.iterdir()):
            _tar_add(tar, f"cifar-10-batches-py/{f.name}", f.read_bytes())
        _tar_add(tar, "../escaped", b"must not be written")
    ds = load_dataset("cifar10", "test", download=False)
    assert np.array_equal(ds.images, test)
    assert not tarball.exists()  # extracted, then removed
    assert sorted(p.name for p in (offline / "cifar10" / "cifar-10-batches-py").iterdir()) == [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ]
    assert not (offline / "escaped").exists() and not (offline / "cifar10" / "escaped").exists()
    assert np.array_equal(load_dataset("cifar10", "train", download=False).images, train)


def test_missing_release_names_the_files(offline: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", "test", download=False)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and "test_batch" in message
    assert str(offline / "cifar10" / "cifar-10-batches-py") in message


FUZZ = settings(max_examples=150, deadline=None)
VALID_BATCH = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [1]}, protocol=2)


@pytest.fixture(scope="module")
def batch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "data_batch_1"


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID_BATCH) - 1), st.integers(0, 255)), max_size=4),
    st.integers(0, len(VALID_BATCH)),
)
def test_fuzz_damaged_batches_raise_data_error(
    batch_file: Path, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(VALID_BATCH)
    for pos, value in edits:
        data[pos] = value
    batch_file.write_bytes(bytes(data[:cut]))
    try:
        images, labels = read_batch(batch_file)
    except DataError as exc:
        assert str(batch_file) in str(exc)
        return
    assert images.shape == (len(labels), 3, 32, 32) and images.dtype == np.uint8
