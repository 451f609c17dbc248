"""CelebA, the aligned-and-cropped faces: the WAE paper's 64x64 preprocessing.

Files, in ``<root>/celeba/``: the images as the folder ``img_align_celeba/`` (000001.jpg ..
202599.jpg, 178x218) or as the unextracted ``img_align_celeba.zip``, and the official
split ``list_eval_partition.txt`` (lines ``000001.jpg 0``; 0 train, 1 valid, 2 test).

Each image is centre-cropped to 140x140 and resized to 64x64 (PIL bilinear, which
antialiases when shrinking), as in Tolstikhin et al., "Wasserstein Auto-Encoders",
section 4; ``image_size`` changes the output side, never the crop.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from waekit.data.source import CONFIG_HINTS, Alloc, Hints, Part, Source, new_uint8
from waekit.data.transforms import (
    DECODE_ERRORS,
    crop_resize,
    default_workers,
    parallel_map,
    to_chw,
)
from waekit.errors import DataError

__all__ = [
    "CROP",
    "CelebaSource",
    "IMAGE_DIR",
    "OFFICIAL_COUNTS",
    "PARTITION",
    "SIZE",
    "ZIP",
    "ImageSource",
    "decode_split",
    "missing_help",
    "open_source",
    "read_partition",
]

PARTITION = "list_eval_partition.txt"
IMAGE_DIR = "img_align_celeba"
ZIP = "img_align_celeba.zip"
CROP = 140
SIZE = 64
SPLIT_CODES = {"0": "train", "1": "valid", "2": "test"}
OFFICIAL_COUNTS = {"train": 162_770, "valid": 19_867, "test": 19_962}
HOMEPAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
#: An aligned CelebA JPEG is about 10 kB; a zip member declaring more than this is refused
#: before it is inflated (a zip bomb).
MAX_IMAGE_BYTES = 16 << 20


def missing_help(folder: Path) -> str:
    return (
        "CelebA cannot be downloaded automatically (it is shared through Google Drive and "
        f"Baidu behind a confirmation step, under terms you accept): from {HOMEPAGE} get "
        f'{ZIP} ("Align&Cropped Images") and {PARTITION} (from the "Eval" folder), and put '
        f"both in {folder} ({ZIP} may stay zipped, or be unzipped there as {IMAGE_DIR}/)"
    )


def read_partition(path: Path) -> dict[str, list[str]]:
    """The official split: file names per split, in file order."""
    if not path.is_file():
        raise DataError(f"the CelebA partition file {path} is missing. {missing_help(path.parent)}")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read as text ({exc})") from exc
    splits: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in SPLIT_CODES:
            raise DataError(
                f"{path}, line {lineno}: expected '<image file> <0|1|2>' (0 train, 1 valid, "
                f"2 test), got {line.strip()[:80]!r}"
            )
        splits[SPLIT_CODES[parts[1]]].append(parts[0])
    if not any(splits.values()):
        raise DataError(f"{path} lists no images; it should hold 202,599 lines like '000001.jpg 0'")
    return splits


class ImageSource:
    """The CelebA images: ``path`` is the extracted folder or the zip, read without extracting."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._names: set[str] | None = None
        if not path.is_dir():
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(
                    f"{path} is not a readable zip file ({exc}); it is truncated or corrupt: "
                    "download it again"
                ) from exc
            # members are found by file name, whatever folder the zip stores them in
            self._members = {
                Path(i.filename).name: i for i in self._zip.infolist() if not i.is_dir()
            }

    def names(self) -> set[str]:
        if self._names is None:
            self._names = set(self._members) if self._zip else set(os.listdir(self.path))
        return self._names

    def where(self, name: str) -> str:
        if self._zip is not None:
            return f"{self.path}:{self._members[name].filename}"
        return str(self.path / name)

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            member = self._members[name]
            if member.file_size > MAX_IMAGE_BYTES:
                raise DataError(
                    f"{self.where(name)} declares {member.file_size:,} bytes; an aligned CelebA "
                    f"image is about 10 kB (at most {MAX_IMAGE_BYTES:,} accepted): the zip is not "
                    f"the official {ZIP}, download it again"
                )
            # zipfile stops at the declared size, so the check above bounds what is inflated
            return self._zip.read(member)
        return (self.path / name).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(folder: Path) -> ImageSource:
    """The images under ``folder`` (the ``celeba/`` data folder): the extracted folder first."""
    if (folder / IMAGE_DIR).is_dir():
        return ImageSource(folder / IMAGE_DIR)
    if (folder / ZIP).is_file():
        return ImageSource(folder / ZIP)
    raise DataError(
        f"no CelebA images in {folder}: neither {IMAGE_DIR}/ nor {ZIP} is there. "
        + missing_help(folder)
    )


def decode_split(
    source: ImageSource,
    names: list[str],
    alloc: Callable[[tuple[int, ...]], np.ndarray],
    size: int = SIZE,
    workers: int = 1,
) -> np.ndarray:
    """Decode ``names`` into ``alloc((N, 3, size, size))``: centre crop 140, resize to ``size``.

    A listed file that is absent or cannot be decoded raises :class:`DataError` naming it.
    """
    available = source.names()
    missing = [n for n in names if n not in available]
    if missing:
        raise DataError(
            f"{len(missing):,} of the {len(names):,} images listed in {PARTITION} are not in "
            f"{source.path} (first: {missing[0]}); extract {ZIP} completely, or delete the "
            "partial folder so that the zip is read"
        )
    out = alloc((len(names), 3, size, size))

    def decode(item: tuple[int, str]) -> None:
        i, name = item
        data = source.read(name)  # its own errors name the member and the fix
        try:
            with Image.open(io.BytesIO(data)) as img:
                out[i] = to_chw(crop_resize(img.convert("RGB"), size, CROP), 3)
        except (*DECODE_ERRORS, zipfile.BadZipFile) as exc:
            raise DataError(
                f"{source.where(name)} cannot be decoded as an image ({exc}); the file is "
                "damaged: extract or download it again"
            ) from exc

    parallel_map(decode, list(enumerate(names)), workers)
    return out


@dataclass(frozen=True)
class CelebaSource(Source):
    """CelebA: the partition file and the images (folder or zip), decoded with the paper's crop."""

    def expected(self, split: str | None = None) -> tuple[str, ...]:
        return (PARTITION, f"{ZIP} or {IMAGE_DIR}/")

    def how_to_get(self, folder: Path, split: str) -> str:
        if not (folder / PARTITION).is_file():
            return f"the partition file {folder / PARTITION} is missing. {missing_help(folder)}"
        return (
            f"no CelebA images in {folder}: neither {IMAGE_DIR}/ nor {ZIP} is there. "
            + missing_help(folder)
        )

    def paths(self, folder: Path, split: str) -> list[Path] | None:
        if not (folder / PARTITION).is_file():
            return None
        if (folder / IMAGE_DIR).is_dir():
            return [folder / PARTITION, folder / IMAGE_DIR]
        return [folder / PARTITION, folder / ZIP] if (folder / ZIP).is_file() else None

    def fetch(self, folder: Path, split: str) -> None:
        raise DataError(missing_help(folder))

    def _names(self, files: list[Path], split: str) -> list[str]:
        names = read_partition(files[0])[split]
        if not names:
            raise DataError(f"{files[0]} lists no images for the {split} split")
        return names

    def read(
        self,
        files: list[Path],
        split: str,
        size: int | None,
        limit: int | None,
        alloc: Alloc | None = None,
        hints: Hints = CONFIG_HINTS,
    ) -> Part:
        names = self._names(files, split)[:limit]
        with ImageSource(files[1]) as source:
            images = decode_split(
                source, names, alloc or new_uint8, size or SIZE, default_workers()
            )
        return Part(images, None, files)

    def summarize(
        self, files: list[Path], split: str, hints: Hints, size: int | None = None
    ) -> dict:
        """Decode every image in chunks (a whole split at once would need gigabytes)."""
        chunk = 4096
        names = self._names(files, split)
        total = 0.0
        with ImageSource(files[1]) as source:
            for start in range(0, len(names), chunk):
                images = decode_split(
                    source, names[start : start + chunk], new_uint8, SIZE, default_workers()
                )
                total += float(images.sum(dtype=np.float64))
        n = len(names)
        return {
            "count": n,
            "shape": [3, SIZE, SIZE],
            "files": [str(f) for f in files],
            "pixel_mean": total / max(1, n * 3 * SIZE**2),
        }
