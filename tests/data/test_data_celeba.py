"""CelebA: the WAE crop and resize, folder and zip layouts, the first-load cache, bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from data_writers import CELEBA_BOX, write_celeba
from PIL import Image

from waekit.data import download_dataset, list_datasets, load_dataset
from waekit.data.cache import CacheUnwritable
from waekit.data.transforms import crop_box, crop_resize
from waekit.errors import DataError

COLOURS = [(200, 30, 40), (20, 180, 60), (250, 250, 0), (90, 0, 160), (10, 10, 10), (0, 128, 255)]
PARTS = [0, 0, 0, 0, 1, 2]


def _max_error(images: np.ndarray, colours: list[tuple[int, int, int]]) -> int:
    target = np.array(colours, dtype=np.int64)[:, :, None, None]
    return int(np.abs(images.astype(np.int64) - target).max())


def test_crop_box_is_the_papers() -> None:
    assert crop_box(178, 218, 140) == CELEBA_BOX
    assert crop_box(300, 100) == (100, 0, 200, 100)  # default: the short side


def test_crop_then_resize_is_exact_on_a_flat_square() -> None:
    pixels = np.zeros((218, 178, 3), np.uint8)
    pixels[...] = (0, 0, 255)
    left, top, right, bottom = CELEBA_BOX
    pixels[top:bottom, left:right] = (200, 30, 40)
    pixels[top:bottom, left] = (0, 255, 0)  # the first column of the crop
    out = np.asarray(crop_resize(Image.fromarray(pixels), 64, 140)).astype(int)
    assert out.shape == (64, 64, 3)
    assert (out[:, 2:] == (200, 30, 40)).all()  # nothing from outside the crop
    assert out[:, 0, 1].min() > 30  # the crop's first column reaches the first output column
    assert out[..., 2].max() <= 40  # no blue (255) from outside the crop


@pytest.mark.parametrize("as_zip", [False, True])
def test_splits_crop_and_resize(offline: Path, as_zip: bool) -> None:
    write_celeba(offline / "celeba", COLOURS, PARTS, as_zip=as_zip)
    train = load_dataset("celeba", "train")
    assert train.images.shape == (4, 3, 64, 64) and train.images.dtype == np.uint8
    assert train.labels is None and train.classes is None
    # the 140x140 centre colour fills the whole 64x64 output (JPEG quality 100: within 8 levels)
    assert _max_error(train.images, COLOURS[:4]) <= 8
    valid = load_dataset("celeba", "valid")
    test = load_dataset("celeba", "test", image_size=32)
    assert len(valid) == 1 and _max_error(valid.images, COLOURS[4:5]) <= 8
    assert test.images.shape == (1, 3, 32, 32) and _max_error(test.images, COLOURS[5:]) <= 8


def test_first_full_load_writes_the_cache(offline: Path) -> None:
    write_celeba(offline / "celeba", COLOURS, PARTS)
    limited = load_dataset("celeba", "train", limit=2)
    assert len(limited) == 2 and not (offline / "celeba" / "prepared").exists()
    first = load_dataset("celeba", "train")
    assert isinstance(first.images, np.memmap) and not first.images.flags.writeable
    prepared = sorted(p.name for p in (offline / "celeba" / "prepared").iterdir())
    assert len(prepared) == 2 and "train-64px.json" in prepared  # unlabelled: no labels file
    assert [p for p in prepared if p.startswith("train-64px.") and p.endswith(".images.npy")]
    # the cache now serves loads even with the images gone
    shutil.rmtree(offline / "celeba" / "img_align_celeba")
    again = load_dataset("celeba", "train", limit=3)
    assert np.array_equal(again.images, first.images[:3]) and "prepared" in again.source
    assert list_datasets()[2].prepared == ("train-64px",)


def test_missing_partition_file(offline: Path) -> None:
    write_celeba(offline / "celeba", COLOURS, PARTS)
    (offline / "celeba" / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError) as info:
        load_dataset("celeba", "test")
    message = str(info.value)
    assert f"partition file {offline / 'celeba' / 'list_eval_partition.txt'} is missing" in message
    assert "img_align_celeba.zip" in message and "mmlab.ie.cuhk.edu.hk" in message


def test_bad_partition_line(offline: Path) -> None:
    write_celeba(offline / "celeba", COLOURS, PARTS)
    partition = offline / "celeba" / "list_eval_partition.txt"
    partition.write_text("000001.jpg 0\n000002.jpg 7\n")
    with pytest.raises(
        DataError,
        match=r"list_eval_partition.txt, line 2: expected '<image file> "
        r"<0\|1\|2>' .* got '000002.jpg 7'",
    ):
        load_dataset("celeba", "train")


def test_no_images_at_all(offline: Path) -> None:
    write_celeba(offline / "celeba", COLOURS, PARTS)
    shutil.rmtree(offline / "celeba" / "img_align_celeba")
    with pytest.raises(DataError, match=r"neither img_align_celeba/ nor img_align_celeba.zip"):
        load_dataset("celeba", "train")


def test_listed_image_missing(offline: Path) -> None:
    write_celeba(offline / "celeba", COLOURS, PARTS)
    (offline / "celeba" / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.raises(DataError, match=r"1 of the 4 images listed .* \(first: 000003.jpg\)"):
        load_dataset("celeba", "train")


@pytest.mark.parametrize("as_zip", [False, True])
def test_damaged_image_is_named(offline: Path, as_zip: bool) -> None:
    names = write_celeba(offline / "celeba", COLOURS, PARTS)
    if as_zip:
        import zipfile

        with zipfile.ZipFile(offline / "celeba" / "img_align_celeba.zip", "w") as zf:
            for name in names:
                zf.writestr(f"img_align_celeba/{name}", b"not a jpeg")
        shutil.rmtree(offline / "celeba" / "img_align_celeba")
        where = "img_align_celeba.zip:img_align_celeba/000001.jpg"
    else:
        path = offline / "celeba" / "img_align_celeba" / "000002.jpg"
        path.write_bytes(path.read_bytes()[:300])
        where = str(path)
    with pytest.raises(DataError) as info:
        load_dataset("celeba", "train", limit=2 if as_zip else None)
    assert where in str(info.value) and "cannot be decoded" in str(info.value)
    assert not list((offline / "celeba").glob("prepared/*.json"))  # no cache from a failed load


def test_truncated_zip(offline: Path) -> None:
    write_celeba(offline / "celeba", COLOURS, PARTS, as_zip=True)
    z = offline / "celeba" / "img_align_celeba.zip"
    z.write_bytes(z.read_bytes()[:200])
    with pytest.raises(DataError, match=r"img_align_celeba.zip is not a readable zip file"):
        load_dataset("celeba", "train")


def test_celeba_cannot_be_downloaded(offline: Path) -> None:
    with pytest.raises(DataError) as info:
        download_dataset("celeba")
    message = str(info.value)
    assert "cannot be downloaded automatically" in message
    assert f"put both in {offline / 'celeba'}" in message and "list_eval_partition.txt" in message


def test_unwritable_root_decodes_in_memory(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from waekit.data import datasets

    write_celeba(offline / "celeba", COLOURS, PARTS)

    class ReadOnly:
        def __init__(self, *args: object) -> None:
            raise CacheUnwritable("cannot write the prepared cache in /read-only: no permission")

    monkeypatch.setattr(datasets, "CacheWriter", ReadOnly)
    ds = load_dataset("celeba", "train")
    assert not isinstance(ds.images, np.memmap) and _max_error(ds.images, COLOURS[:4]) <= 8
    assert ds.note.startswith("no prepared cache could be written (cannot write")
