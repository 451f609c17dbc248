"""Downloads of the official files: each mirror in turn, md5-checked, written atomically.

A file is streamed into ``.<name>.partial`` in its destination folder,
its md5 compared with the official one, and only then renamed to its final name
(``os.replace``), so an interrupted or corrupted transfer never leaves a file that a
later run would take for a good one. A transfer cut short keeps its bytes in
``.<name>.partial``; the next attempt asks for the rest (an HTTP Range request) and the
whole file is md5-checked as before (a partial file that fails is deleted). Every
socket operation has a timeout, each file a deadline, and a transfer that trickles (less
than :data:`STALL_BYTES` in :data:`STALL_S` seconds) is abandoned as stalled.

The base URLs live in :data:`MIRRORS` (a test or a site mirror may replace them); the
environment variable ``WAEKIT_DATA_MIRROR`` names a base URL tried first, under which a
file is fetched as ``<base>/<data set>/<file name>``.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from waekit.data.files import clean_orphans
from waekit.errors import DataError

__all__ = [
    "MIRRORS",
    "MD5",
    "MIRROR_ENV",
    "DownloadError",
    "fetch",
    "file_md5",
    "mirror_urls",
    "partial_path",
]

log = logging.getLogger("waekit.data")

#: Base URLs per data set, tried in order.
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/"],
}

#: md5 of the official files, as published with each data set.
MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "cifar10": {
        "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    },
    "celeba": {
        "img_align_celeba.zip": "00d2c5bc6d35e252742224ab0c1e8fcb",
        "list_eval_partition.txt": "d32c9cbf5e040fd4025c592c306e6668",
    },
}

MIRROR_ENV = "WAEKIT_DATA_MIRROR"
#: Seconds any one connect or read may take before the transfer is abandoned.
TIMEOUT_S = 30.0
#: Seconds one file may take in all (CIFAR-10's 163 MB at 50 kB/s takes 55 minutes).
DEADLINE_S = 3 * 3600.0
#: A transfer is stalled when fewer than STALL_BYTES arrive in STALL_S seconds.
STALL_S = 60.0
STALL_BYTES = 16 * 1024
_CHUNK = 1 << 20


class DownloadError(DataError):
    """No mirror delivered a good copy of a file (offline, refused, cut short or wrong md5)."""


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mirror_urls(dataset: str, filename: str) -> list[str]:
    """Every URL tried for ``filename``, in order."""
    bases = []
    env = os.environ.get(MIRROR_ENV, "").strip()
    if env:
        bases.append(f"{env.rstrip('/')}/{dataset}/")
    bases.extend(MIRRORS.get(dataset, []))
    return [base.rstrip("/") + "/" + filename for base in bases]


class _Watch:
    """The per-file deadline and the stall detector of one transfer.

    A server that trickles bytes defeats a per-read timeout: every read returns something.
    So the transfer also fails when the whole file takes longer than :data:`DEADLINE_S`, or
    when fewer than :data:`STALL_BYTES` arrive in any :data:`STALL_S` seconds.
    """

    def __init__(self) -> None:
        self.start = self.window_start = time.monotonic()
        self.window_bytes = 0

    def update(self, received: int, total: int) -> None:
        now = time.monotonic()
        if now - self.start > DEADLINE_S:
            raise TimeoutError(
                f"gave up after {DEADLINE_S:g} s (the deadline per file) with {total:,} bytes "
                "received"
            )
        self.window_bytes += received
        if now - self.window_start >= STALL_S:
            if self.window_bytes < STALL_BYTES:
                span = now - self.window_start
                raise TimeoutError(
                    f"stalled: {self.window_bytes:,} bytes in the last {span:.1f} s (less than "
                    f"{STALL_BYTES:,} per {STALL_S:g} s), {total:,} bytes received"
                )
            self.window_start, self.window_bytes = now, 0


def partial_path(dest: Path) -> Path:
    """Where the bytes of an unfinished download of ``dest`` are kept for the next attempt."""
    return dest.parent / f".{dest.name}.partial"


def _md5_of(path: Path) -> hashlib._Hash:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest


def _transfer(url: str, dest: Path, md5: str, progress: bool | None) -> None:
    """Download ``url`` to ``dest``, resuming its partial file; raise ``OSError``/``ValueError``.

    The bytes go to :func:`partial_path` (kept when the transfer fails, so the next one asks
    the server for the rest with an HTTP Range request), and only a file whose md5 is the
    official one is renamed to ``dest``; a partial file that fails the md5 is deleted.
    """
    partial = partial_path(dest)
    have = partial.stat().st_size if partial.is_file() else 0
    headers = {"User-Agent": "waekit"} | ({"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S
        )
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the kept bytes are not a prefix of this file
            partial.unlink()
            return _transfer(url, dest, md5, progress)
        raise
    with resp:
        resumed = have > 0 and resp.status == 206
        resumed = resumed and resp.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        have = have if resumed else 0
        digest = _md5_of(partial) if resumed else hashlib.md5(usedforsecurity=False)
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None and length.isdigit() else None
        received = have
        watch = _Watch()
        try:
            with (
                partial.open("ab" if resumed else "wb") as out,
                tqdm(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=None if progress is None else not progress,
                    leave=True,
                ) as bar,
            ):
                # read1: whatever has arrived (one socket read), so the watch sees a trickle
                while chunk := resp.read1(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    watch.update(len(chunk), received)
                out.flush()
                os.fsync(out.fileno())
        finally:
            if partial.is_file() and partial.stat().st_size == 0:
                partial.unlink()
    if total is not None and received != total:
        raise ValueError(f"the connection closed after {received:,} of {total:,} bytes")
    got = digest.hexdigest()
    if got != md5:
        partial.unlink(missing_ok=True)
        raise ValueError(
            f"checksum mismatch: md5 {got}, expected {md5} ({received:,} bytes received)"
        )
    os.replace(partial, dest)
    return None


def _said(what: object, limit: int = 200) -> str:
    """What a server or the network said, cut short: a reason phrase can be 64 kB long."""
    text = str(what)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fetch(dataset: str, filename: str, folder: Path, progress: bool | None = None) -> Path:
    """Download the official ``filename`` of ``dataset`` into ``folder``; return its path.

    Raises :class:`DownloadError` listing what each mirror answered; no file named
    ``filename`` is left behind unless its md5 is the official one. The bytes of a transfer
    cut short are kept in ``.<filename>.partial`` and the next fetch resumes from them.
    ``progress`` shows a progress bar on stderr (None: when stderr is a terminal).
    """
    md5 = MD5[dataset][filename]
    dest = folder / filename
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the data folder {folder}: {exc}") from exc
    clean_orphans(folder)
    failures = []
    for url in mirror_urls(dataset, filename):
        log.info("downloading %s", url)
        try:
            _transfer(url, dest, md5, progress)
        except urllib.error.HTTPError as exc:
            failures.append(f"{url}: HTTP {exc.code} {_said(exc.reason)}")
        except urllib.error.URLError as exc:
            failures.append(f"{url}: {_said(exc.reason)}")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {_said(exc) or type(exc).__name__}")
        else:
            log.info("saved %s (md5 %s)", dest, md5)
            return dest
    partial = partial_path(dest)
    if partial.is_file():
        failures.append(
            f"{partial.stat().st_size:,} bytes are kept in {partial}: the next download resumes "
            "from there"
        )
    if not failures:
        failures.append(
            f"no mirror is known for {dataset}: name one with `export {MIRROR_ENV}=URL` (files "
            f"are fetched as URL/{dataset}/{filename})"
        )
    raise DownloadError(f"could not download {filename} into {folder}: " + "; ".join(failures))
