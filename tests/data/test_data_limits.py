"""Crafted files: bombs and huge declared shapes are refused before allocation, in one line;
messages quoting file contents stay short."""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from data_writers import idx_bytes, small_digits, write_celeba, write_idx_split

from waekit.data import load_dataset, npz
from waekit.data.cifar import read_batch
from waekit.data.idx import read_idx
from waekit.errors import DataError


def _peak_mib(fn) -> tuple[float, BaseException | None]:
    """Peak Python-allocated memory (MiB) while ``fn`` runs, and what it raised."""
    tracemalloc.start()
    caught = None
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 (returned to the test)
        caught = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, caught


def _gzip_stream(header: bytes, zeros: int) -> bytes:
    """gzip of ``header`` then ``zeros`` zero bytes, compressed chunk by chunk (a small bomb)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    parts = [comp.compress(header)]
    chunk = bytes(1 << 20)
    for _ in range(zeros >> 20):
        parts.append(comp.compress(chunk))
    parts.append(comp.flush())
    return b"".join(parts)


def test_idx_header_declaring_1e10_bytes_is_refused_before_allocation(offline: Path) -> None:
    folder = offline / "mnist"
    write_idx_split(folder, "test", *small_digits(3))
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 100_000, 100_000, 1)  # 1e10 bytes
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(64)))
    peak, exc = _peak_mib(lambda: load_dataset("mnist", "test", download=False))
    assert isinstance(exc, DataError) and peak < 5
    message = str(exc)
    assert "\n" not in message
    assert (
        "the header declares 100,000 x 100,000 x 1 = 10,000,000,000 bytes of data, more than "
        "the 784,000,000 this data set can hold" in message
    )  # 1,000,000 images of 28 x 28


def test_gzip_bomb_behind_a_plausible_header_stops_at_the_declared_size(tmp_path: Path) -> None:
    # 1,000 images declared (784,000 bytes) but 64 MiB of zeros follow: about 64 KiB on disk
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 1000, 28, 28)
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(_gzip_stream(header, 64 << 20))
    assert bomb.stat().st_size < 200_000
    peak, exc = _peak_mib(lambda: read_idx(bomb, ndim=3, max_bytes=10**9))
    assert isinstance(exc, DataError) and peak < 8  # never more than the declared 0.75 MiB
    assert str(exc) == (
        f"{bomb}: the header says 1,000 x 28 x 28 = 784,000 bytes of data but the file holds "
        "more; the file is longer than its header says: delete it and download it again"
    )


def test_labels_bound_and_honest_files_still_read(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_bytes(gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8))))
    assert read_idx(labels, ndim=1, max_bytes=10).tolist() == list(range(10))
    with pytest.raises(DataError, match=r"declares 10 = 10 bytes of data, more than the 9 "):
        read_idx(labels, ndim=1, max_bytes=9)


def _npz_with_header(path: Path, shape: tuple[int, ...], payload: bytes) -> None:
    """An .npz whose images.npy declares ``shape`` (uint8) but holds ``payload``."""
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        member, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    member.write(payload)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("images.npy", member.getvalue())


def test_npz_declaring_a_huge_shape_is_refused_before_allocation(tmp_path: Path) -> None:
    path = tmp_path / "liar.npz"
    _npz_with_header(path, (10**10, 28, 28), bytes(100))
    peak, exc = _peak_mib(lambda: load_dataset("npz", "all", path=path))
    assert isinstance(exc, DataError) and peak < 5
    assert str(exc).startswith(
        f"{path}: the array images.npy declares shape (10000000000, 28, 28) of uint8 = "
        "7,840,000,000,000 bytes, but its file holds "
    )
    assert str(exc).endswith(
        "the file is damaged or crafted: save it with np.savez(path, images=..., labels=...)"
    )


def test_npz_zip_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, images=np.zeros((4000, 1, 28, 28), np.uint8))  # 3 MB -> ~3 KB
    monkeypatch.setattr(npz, "RATIO_FLOOR", 1 << 20)  # the bound, scaled down to the test
    peak, exc = _peak_mib(lambda: load_dataset("npz", "all", path=path))
    assert isinstance(exc, DataError) and peak < 2
    assert "refused as a zip bomb; if the data are genuine, save them uncompressed with " in (
        str(exc)
    )
    # the same images stored uncompressed (ratio 1) load
    np.savez(path, images=np.zeros((4000, 1, 28, 28), np.uint8))
    assert load_dataset("npz", "all", path=path).images.shape == (4000, 1, 28, 28)


def _aliased(depth: int, width: int = 10) -> tuple:
    """A tuple whose repr has width**depth elements but which pickles in a few bytes."""
    node: tuple = tuple(range(width))
    for _ in range(depth):
        node = (node,) * width
    return node


def test_cifar_pickle_with_an_aliased_key_gives_a_short_message(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    key = _aliased(7)  # its repr: 10**8 numbers, about 400 MB
    path.write_bytes(pickle.dumps({key: 1, b"labels": [0]}, protocol=2))
    assert path.stat().st_size < 2000
    with pytest.raises(DataError) as info:
        read_batch(path)
    message = str(info.value)
    assert len(message) < 400 and "\n" not in message
    assert "the key 'data' is missing (keys: ((((...), (...), (...)" in message
    assert message.endswith(", b'labels')")


def test_cifar_pickle_with_many_keys_names_a_few(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({i: i for i in range(100_000)}, protocol=2))
    with pytest.raises(DataError) as info:
        read_batch(path)
    assert str(info.value).endswith("(keys: 0, 1, 2, 3, 4, 5, 6, 7, ... (100,000 keys))")


def test_a_huge_name_is_quoted_briefly(offline: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("x" * 10_000_000)
    assert len(str(info.value)) < 300 and "unknown data set 'xxxx" in str(info.value)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", "y" * 10_000_000)
    assert len(str(info.value)) < 200


def test_raw_idx_header_is_checked_against_the_file_size_before_reading(tmp_path: Path) -> None:
    raw = tmp_path / "raw-images"
    raw.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 900_000, 28, 28) + bytes(100))
    peak, exc = _peak_mib(lambda: read_idx(raw, ndim=3, max_bytes=10**9))
    assert isinstance(exc, DataError) and peak < 1  # the 705,600,000 declared are never asked for
    assert "the header says 900,000 x 28 x 28 = 705,600,000 bytes of data but the file holds " in (
        str(exc)
    )
    assert str(exc).endswith("100; the file is truncated: delete it and download it again")


def test_celeba_zip_member_declaring_gigabytes_is_refused_unread(offline: Path) -> None:
    folder = offline / "celeba"
    write_celeba(folder, [(255, 0, 0), (0, 255, 0), (0, 0, 255)], [0, 1, 2])
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("000001.jpg", "000002.jpg", "000003.jpg"):
            with zf.open(f"img_align_celeba/{name}", "w", force_zip64=True) as member:
                chunk = bytes(1 << 20)
                for _ in range(64):  # 64 MiB of zeros: about 64 kB stored
                    member.write(chunk)
    shutil.rmtree(folder / "img_align_celeba")
    peak, exc = _peak_mib(lambda: load_dataset("celeba", "train", limit=1))
    assert isinstance(exc, DataError) and peak < 8
    assert str(exc) == (
        f"{folder / 'img_align_celeba.zip'}:img_align_celeba/000001.jpg declares 67,108,864 "
        "bytes; an aligned CelebA image is about 10 kB (at most 16,777,216 accepted): the zip is "
        "not the official img_align_celeba.zip, download it again"
    )
