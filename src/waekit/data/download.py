"""Downloads of the official files: each mirror in turn, md5-checked, written atomically.

A file is streamed into a temporary ``.<name>.*.part`` file in its destination folder,
its md5 compared with the official one, and only then renamed to its final name
(``os.replace``), so an interrupted or corrupted transfer never leaves a file that a
later run would take for a good one. Every socket operation has a timeout.

The base URLs live in :data:`MIRRORS` (a test or a site mirror may replace them); the
environment variable ``WAEKIT_DATA_MIRROR`` names a base URL tried first, under which a
file is fetched as ``<base>/<data set>/<file name>``.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from waekit.errors import DataError

__all__ = [
    "MIRRORS",
    "MD5",
    "MIRROR_ENV",
    "DownloadError",
    "fetch",
    "file_md5",
    "mirror_urls",
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


def _transfer(url: str, dest: Path, md5: str) -> None:
    """Download ``url`` to ``dest`` through a temporary file; raise ``OSError``/``ValueError``."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        request = urllib.request.Request(url, headers={"User-Agent": "waekit"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            length = resp.headers.get("Content-Length")
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
            if length is not None and length.isdigit() and received != int(length):
                raise ValueError(
                    f"the connection closed after {received:,} of {int(length):,} bytes"
                )
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != md5:
            raise ValueError(
                f"checksum mismatch: md5 {got}, expected {md5} ({received:,} bytes received)"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(dataset: str, filename: str, folder: Path) -> Path:
    """Download the official ``filename`` of ``dataset`` into ``folder``; return its path.

    Raises :class:`DownloadError` listing what each mirror answered; no file named
    ``filename`` is left behind unless its md5 is the official one.
    """
    md5 = MD5[dataset][filename]
    dest = folder / filename
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the data folder {folder}: {exc}") from exc
    failures = []
    for url in mirror_urls(dataset, filename):
        log.info("downloading %s", url)
        try:
            _transfer(url, dest, md5)
        except urllib.error.HTTPError as exc:
            failures.append(f"{url}: HTTP {exc.code} {exc.reason}")
        except urllib.error.URLError as exc:
            failures.append(f"{url}: {exc.reason}")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {str(exc) or type(exc).__name__}")
        else:
            log.info("saved %s (md5 %s)", dest, md5)
            return dest
    if not failures:
        failures.append(f"no mirror is configured for {dataset} (waekit.data.download.MIRRORS)")
    raise DownloadError(f"could not download {filename} into {folder}: " + "; ".join(failures))
