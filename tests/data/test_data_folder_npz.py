"""Image folders and .npz files: layouts, labels, channels, sizes, splits, bad input."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from waekit.data import load_dataset
from waekit.errors import DataError


def _png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _grey(value: int, size: tuple[int, int] = (16, 16)) -> np.ndarray:
    return np.full(size, value, np.uint8)


# ----------------------------------------------------------------------------- folders


def test_class_subfolders_give_labels(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "cats" / f"c{i}.png", _grey(10 + i))
    for i in range(2):
        _png(tmp_path / "dogs" / "deeper" / f"d{i}.PNG", _grey(100 + i))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    _png(tmp_path / ".hidden" / "x.png", _grey(0))
    ds = load_dataset("folder", "all", path=str(tmp_path))
    assert ds.images.shape == (5, 1, 16, 16) and ds.images.dtype == np.uint8
    assert ds.classes == ("cats", "dogs") and ds.labels.tolist() == [0, 0, 0, 1, 1]
    assert ds.images[:, 0, 0, 0].tolist() == [10, 11, 12, 100, 101]
    assert ds.name == "folder" and ds.source == str(tmp_path)


def test_loose_images_have_no_labels_and_limit(tmp_path: Path) -> None:
    for i in range(4):
        _png(tmp_path / f"{i}.png", _grey(i))
    ds = load_dataset("folder", "all", path=str(tmp_path), limit=3)
    assert ds.labels is None and ds.images[:, 0, 5, 5].tolist() == [0, 1, 2]


def test_hash_split_is_disjoint_and_stable(tmp_path: Path) -> None:
    names = [f"img{i:03d}.png" for i in range(60)]
    for i, name in enumerate(names):
        _png(tmp_path / name, _grey(i, (4, 4)))
    expected_test = [i for i, n in enumerate(names) if zlib.crc32(n.encode()) % 10 == 0]
    train = load_dataset("folder", "train", path=str(tmp_path))
    test = load_dataset("folder", "test", path=str(tmp_path))
    assert test.images[:, 0, 0, 0].tolist() == expected_test
    assert len(train) + len(test) == 60 and len(test) == len(expected_test) > 0
    assert not set(train.images[:, 0, 0, 0].tolist()) & set(expected_test)
    assert "test split is the 1 file in 10 picked by a hash" in test.note


def test_split_subfolders(tmp_path: Path) -> None:
    _png(tmp_path / "train" / "a" / "1.png", _grey(1))
    _png(tmp_path / "train" / "b" / "2.png", _grey(2))
    _png(tmp_path / "val" / "a" / "3.png", _grey(3))
    valid = load_dataset("folder", "valid", path=str(tmp_path))
    assert valid.images[:, 0, 0, 0].tolist() == [3] and valid.classes == ("a",)
    assert load_dataset("folder", "train", path=str(tmp_path)).labels.tolist() == [0, 1]
    no_test = r"has split sub-folders \(train, val\) but none for split 'test'"
    with pytest.raises(DataError, match=no_test):
        load_dataset("folder", "test", path=str(tmp_path))


def test_any_colour_image_makes_it_rgb(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", _grey(77))
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200
    _png(tmp_path / "b.png", rgb)
    ds = load_dataset("folder", "all", path=str(tmp_path))
    assert ds.image_shape == (3, 16, 16)
    assert ds.images[0, :, 3, 3].tolist() == [77, 77, 77]
    assert ds.images[1, :, 3, 3].tolist() == [200, 0, 0]


def test_image_size_crops_the_centre_square(tmp_path: Path) -> None:
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10] = (255, 0, 0)
    wide[:, 10:30] = (0, 255, 0)  # the centre 20x20 square
    wide[:, 30:] = (0, 0, 255)
    _png(tmp_path / "wide.png", wide)
    Image.fromarray(wide).save(tmp_path / "wide.JPG", quality=100, subsampling=0)
    ds = load_dataset("folder", "all", path=str(tmp_path), image_size=8)
    assert ds.images.shape == (2, 3, 8, 8)
    jpg, png = ds.images  # sorted by path: wide.JPG, wide.png
    assert (png.transpose(1, 2, 0) == (0, 255, 0)).all()
    assert np.abs(jpg.astype(int) - np.array([0, 255, 0])[:, None, None]).max() <= 8


def test_sixteen_bit_grey_is_scaled(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 257 * 200, np.uint16)).save(tmp_path / "deep.png")
    ds = load_dataset("folder", "all", path=str(tmp_path))
    assert ds.image_shape == (1, 8, 8) and int(ds.images.max()) == 200


def test_mixed_sizes_need_image_size(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", _grey(1, (16, 16)))
    _png(tmp_path / "b.png", _grey(1, (10, 12)))
    with pytest.raises(
        DataError,
        match=r"2 different sizes \(e.g. b.png is 12x10, a.png is 16x16\); to centre-crop and "
        r"resize them all to one square size, set it: `--set data.image_size=8`$",
    ):
        load_dataset("folder", "all", path=str(tmp_path))
    assert load_dataset("folder", "all", path=str(tmp_path), image_size=8).images.shape == (
        2,
        1,
        8,
        8,
    )


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"no images in .*empty: looked recursively for .png, .jpg"):
        load_dataset("folder", "all", path=str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"image folder .*nowhere does not exist"):
        load_dataset("folder", path=str(tmp_path / "nowhere"))
    with pytest.raises(
        DataError,
        match=r"'folder' reads your own files: say where they are with `--set data.path=DIR`$",
    ):
        load_dataset("folder")


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    _png(tmp_path / "good.png", _grey(1))
    (tmp_path / "junk.png").write_bytes(b"definitely not a png")
    junk = r"junk.png cannot be read as an image .* remove or replace"
    with pytest.raises(DataError, match=junk):
        load_dataset("folder", "all", path=str(tmp_path))
    (tmp_path / "junk.png").unlink()
    noise = np.random.default_rng(0).integers(0, 255, (16, 16), np.uint8)
    cut = _png(tmp_path / "cut.png", noise)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with pytest.raises(DataError) as info:
        load_dataset("folder", "all", path=str(tmp_path))
    assert str(cut) in str(info.value)


# ----------------------------------------------------------------------------- npz


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
def test_npz_layouts(tmp_path: Path, layout: str) -> None:
    base = np.random.default_rng(1).integers(0, 256, (5, 3, 6, 7), dtype=np.uint8)  # N C H W
    stored = {"nhw": base[:, 0], "nhwc": base.transpose(0, 2, 3, 1), "nchw": base}[layout]
    ds = load_dataset(
        "npz", "all", path=_npz(tmp_path / "x.npz", images=stored, labels=np.arange(5))
    )
    expected = base[:, :1] if layout == "nhw" else base
    assert np.array_equal(ds.images, expected) and ds.images.flags.c_contiguous
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == [0, 1, 2, 3, 4]


def test_npz_float_images(tmp_path: Path) -> None:
    images = np.array([0.0, 0.5, 1.0, 0.2]).reshape(1, 2, 2)
    ds = load_dataset("npz", "all", path=_npz(tmp_path / "f.npz", images=images))
    assert ds.images.ravel().tolist() == [0, 128, 255, 51] and ds.labels is None


def test_npz_splits_limit_and_size(tmp_path: Path) -> None:
    images = np.repeat(np.arange(25, dtype=np.uint8)[:, None, None], 8, 1).repeat(8, 2)
    path = _npz(tmp_path / "s.npz", images=images)
    test = load_dataset("npz", "test", path=path)
    train = load_dataset("npz", "train", path=path, limit=4, image_size=4)
    assert test.images[:, 0, 0, 0].tolist() == [9, 19]
    assert train.images.shape == (4, 1, 4, 4) and train.images[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert len(load_dataset("npz", path=path)) == 23  # default split: train


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        ({"pixels": np.zeros((2, 4, 4), np.uint8)}, r"has no 'images' array \(keys: 'pixels'\)"),
        (
            {"images": np.full((1, 4, 4), 1.5)},
            r"float images must lie in \[0, 1\], found \[1.5, 1.5\]",
        ),
        ({"images": np.full((1, 4, 4), np.nan)}, r"contain NaN or infinite values"),
        ({"images": np.full((1, 4, 4), 300)}, r"integer images must lie in 0..255, found 300..300"),
        ({"images": np.zeros((2, 5, 4, 4), np.uint8)}, r"no channel axis of length 1 or 3"),
        ({"images": np.zeros((4, 4), np.uint8)}, r"must be \(N, H, W\), .* got shape \(4, 4\)"),
        (
            {"images": np.zeros((2, 4, 4), np.uint8), "labels": np.arange(3)},
            r"'labels' must be 2 integers \(one per image\), got int64 \(3,\)",
        ),
        (
            {"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0.5, 1.0])},
            r"'labels' must be 2 integers",
        ),
    ],
)
def test_npz_bad_arrays(tmp_path: Path, arrays: dict, pattern: str) -> None:
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=pattern) as info:
        load_dataset("npz", "all", path=path)
    assert path in str(info.value)


def test_npz_bad_files(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 but not really a zip")
    with pytest.raises(DataError, match=r"junk.npz is not a readable .npz file"):
        load_dataset("npz", "all", path=str(tmp_path / "junk.npz"))
    np.save(tmp_path / "single.npy", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"single.npy holds a single array, not an .npz archive"):
        load_dataset("npz", "all", path=str(tmp_path / "single.npy"))
    np.savez(tmp_path / "objects.npz", images=np.array([object()] * 2))
    with pytest.raises(DataError, match=r"objects.npz: an array cannot be read .*pickle"):
        load_dataset("npz", "all", path=str(tmp_path / "objects.npz"))
    with pytest.raises(DataError, match=r"npz file .*absent.npz does not exist"):
        load_dataset("npz", path=str(tmp_path / "absent.npz"))
