"""The IDX reader: exact round trips, every rejected input named, and fuzzing."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from data_writers import idx_bytes, small_digits, write_idx_split
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waekit.data import load_dataset
from waekit.data.idx import parse_idx, read_idx, read_maybe_gzip
from waekit.errors import DataError


def test_round_trip_gzip_and_raw(tmp_path: Path) -> None:
    images, labels = small_digits(20)
    for gz in (True, False):
        img_path, lbl_path = write_idx_split(tmp_path / str(gz), "test", images, labels, gz=gz)
        assert np.array_equal(read_idx(img_path, ndim=3), images)
        assert np.array_equal(read_idx(lbl_path, ndim=1), labels)


def test_loader_reads_a_small_release(offline: Path) -> None:
    images, labels = small_digits(20)
    write_idx_split(offline / "mnist", "test", images, labels)
    ds = load_dataset("mnist", "test")
    assert ds.images.shape == (20, 1, 28, 28) and ds.images.dtype == np.uint8
    assert np.array_equal(ds.images[:, 0], images)
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == list(range(10)) * 2
    assert ds.source.endswith("{t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz}")


def test_raw_files_are_found_too(offline: Path) -> None:
    images, labels = small_digits(7)
    write_idx_split(offline / "mnist", "train", images, labels, gz=False)
    assert len(load_dataset("mnist", "train", download=False)) == 7


def _expect(offline: Path, pattern: str) -> str:
    with pytest.raises(DataError) as info:
        load_dataset("mnist", "test", download=False)
    message = str(info.value)
    assert re.search(pattern, message), message
    return message


def test_truncated_gzip(offline: Path) -> None:
    img, _ = write_idx_split(offline / "mnist", "test", *small_digits(20))
    img.write_bytes(img.read_bytes()[: img.stat().st_size // 2])
    message = _expect(offline, "truncated or corrupt gzip")
    assert str(img) in message and "download it again" in message


def test_corrupt_gzip(offline: Path) -> None:
    img, _ = write_idx_split(offline / "mnist", "test", *small_digits(20))
    data = bytearray(img.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    img.write_bytes(bytes(data))
    assert str(img) in _expect(offline, "truncated or corrupt gzip")


def test_wrong_magic_number(offline: Path) -> None:
    img, _ = write_idx_split(offline / "mnist", "test", *small_digits(3), gz=False)
    img.write_bytes(b"\x08\x03\x00\x00" + img.read_bytes()[4:])
    message = _expect(offline, r"wrong magic number 0x08030000")
    assert str(img) in message


def test_not_unsigned_bytes(offline: Path) -> None:
    img, _ = write_idx_split(offline / "mnist", "test", *small_digits(3), gz=False)
    img.write_bytes(b"\x00\x00\x0d\x03" + img.read_bytes()[4:])
    _expect(offline, r"element type 0x0d; only unsigned bytes \(0x08\)")


def test_dims_disagree_with_file_size(offline: Path) -> None:
    images, labels = small_digits(5)
    img, _ = write_idx_split(offline / "mnist", "test", images, labels, gz=False)
    img.write_bytes(img.read_bytes()[: -28 * 28])  # one image short
    message = _expect(
        offline, r"the header says 5 x 28 x 28 = 3,920 bytes of data but the file holds 3,136"
    )
    assert str(img) in message and "truncated" in message


def test_trailing_bytes(offline: Path) -> None:
    img, _ = write_idx_split(offline / "mnist", "test", *small_digits(5), gz=False)
    img.write_bytes(img.read_bytes() + b"\x00" * 3)
    _expect(offline, r"holds 3,923; the file is longer than its header says")


def test_image_and_label_counts_disagree(offline: Path) -> None:
    images, labels = small_digits(5)
    img, lbl = write_idx_split(offline / "mnist", "test", images, labels[:4])
    message = _expect(offline, r"holds 5 images but .* holds 4 labels")
    assert str(img) in message and str(lbl) in message


def test_swapped_files(offline: Path) -> None:
    images, labels = small_digits(5)
    img, lbl = write_idx_split(offline / "mnist", "test", images, labels)
    img_bytes, lbl_bytes = img.read_bytes(), lbl.read_bytes()
    img.write_bytes(lbl_bytes)
    lbl.write_bytes(img_bytes)
    _expect(offline, r"declares 1 dimensions but images .* are the images and labels files swapped")


def test_label_out_of_range(offline: Path) -> None:
    images, labels = small_digits(5)
    labels[3] = 12
    _, lbl = write_idx_split(offline / "mnist", "test", images, labels)
    assert str(lbl) in _expect(offline, r"label 12 at index 3 is outside 0..9")


def test_too_short_for_a_header() -> None:
    with pytest.raises(DataError, match=r"x: only 3 bytes, too short"):
        parse_idx(b"\x00\x00\x08", "x")
    with pytest.raises(DataError, match=r"needs 16 bytes but the file has 9"):
        parse_idx(b"\x00\x00\x08\x03\x00\x00\x00\x01\x00", "x")


def test_empty_arrays_are_valid() -> None:
    assert parse_idx(idx_bytes(np.zeros((0, 28, 28), np.uint8)), "x").shape == (0, 28, 28)


# ----------------------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID = idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))


def _parse_or_data_error(data: bytes) -> None:
    try:
        out = parse_idx(data, "fuzz")
    except DataError as exc:
        assert str(exc).startswith("fuzz")
        return
    assert out.dtype == np.uint8
    assert 4 + 4 * out.ndim + out.size == len(data)


@FUZZ
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parse_or_data_error(data)
    _parse_or_data_error(b"\x00\x00\x08" + data)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, len(VALID) + 4),
    st.binary(max_size=8),
)
def test_fuzz_mutated_valid_file(edits: list[tuple[int, int]], cut: int, tail: bytes) -> None:
    data = bytearray(VALID)
    for pos, value in edits:
        data[pos] = value
    _parse_or_data_error(bytes(data[:cut]) + tail)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # module-scoped: hypothesis reruns the test body, a function-scoped fixture would be shared
    return tmp_path_factory.mktemp("fuzz") / "fuzz.gz"


@FUZZ
@given(st.integers(0, 200), st.binary(max_size=16))
def test_fuzz_truncated_or_garbled_gzip(scratch: Path, cut: int, tail: bytes) -> None:
    packed = gzip.compress(VALID)
    scratch.write_bytes(packed[: cut % (len(packed) + 1)] + tail)
    try:
        raw = read_maybe_gzip(scratch)
    except DataError as exc:
        assert str(scratch) in str(exc)
        return
    _parse_or_data_error(raw)
