"""Atomic writes, the safetensors header checks, bounded reprs and the CLI's one-line faults."""

from __future__ import annotations

import errno
import json
import math
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save as safetensors_bytes

import waekit
from waekit import io as wio
from waekit.checkpoint import load_checkpoint, save_checkpoint
from waekit.errors import CheckpointError, brief, os_error_message


# -- atomic writes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_files_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        wio.atomic_write_text(tmp_path / "a.txt", "x")
        wio.save_tensors({"w": torch.ones(2)}, tmp_path / "w.safetensors")
        with open(tmp_path / "plain.txt", "w") as f:  # what open() gives under this umask
            f.write("x")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == expected
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == expected
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == expected


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(wio.TMP_SUFFIX))


@pytest.mark.parametrize(
    "fault, code",
    [("fsync", errno.ENOSPC), ("write", errno.EDQUOT), ("replace", errno.EROFS)],
)
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, fault, code):
    target = tmp_path / "config.yaml"
    wio.atomic_write_text(target, "old\n")

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    if fault == "write":
        monkeypatch.setattr(wio.os, "fdopen", lambda fd, mode: _FailingFile(fd, code))
    else:
        monkeypatch.setattr(wio.os, fault, refuse)
    with pytest.raises(OSError) as info:
        wio.atomic_write_text(target, "new\n")
    # The error names the file the user asked for, not the temporary.
    assert info.value.errno == code and info.value.filename == str(target)
    assert target.read_text() == "old\n"
    assert _temporaries(tmp_path) == []


class _FailingFile:
    """A file object whose write fails like a full disk; closes its descriptor."""

    def __init__(self, fd: int, code: int):
        self.fd, self.code = fd, code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)

    def write(self, data):
        raise OSError(self.code, os.strerror(self.code))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [
            f".last.safetensors.{dead}.0a1b2c3d{wio.TMP_SUFFIX}",
            f".model.json.{dead}.ffffffff{wio.TMP_SUFFIX}",
        ]
        kept = [
            f".last.safetensors.{live.pid}.01234567{wio.TMP_SUFFIX}",  # a live writer's
            f".last.safetensors.{os.getpid()}.89abcdef{wio.TMP_SUFFIX}",  # ours
            f"notes{wio.TMP_SUFFIX}",  # not our naming: never touched
            f".x.notapid.00{wio.TMP_SUFFIX}",
            ".hidden",
        ]
        for name in stale + kept:
            (tmp_path / name).write_bytes(b"partial")
        wio.atomic_write_text(tmp_path / "config.yaml", "a: 1\n")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["config.yaml"])
        assert wio.remove_stale_temporaries(tmp_path) == []
    finally:
        live.kill()
        live.wait()
    assert wio.remove_stale_temporaries(tmp_path) == [
        tmp_path / f".last.safetensors.{live.pid}.01234567{wio.TMP_SUFFIX}"
    ]


# -- safetensors headers --------------------------------------------------------------------------
def _raw_file(path: Path, header: dict | bytes, body: bytes = b"") -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        wio.load_tensors(path)
    return str(info.value)


def test_a_crafted_giant_tensor_is_refused_before_any_allocation(tmp_path):
    # 10^10 float32 elements would be 40 GB; the file is 100 bytes.
    header = {"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 4 * 10**10]}}
    path = _raw_file(tmp_path / "big.safetensors", header, b"\0" * 16)
    t0 = time.perf_counter()
    message = _refusal(path)
    assert time.perf_counter() - t0 < 0.5
    assert f"{path} declares tensor 'w' with 1e+10 elements (shape [100000, 100000])" in message
    assert f"over the maximum of {2**31}: corrupt or crafted" in message
    # Within the maximum but beyond the file: refused as truncated, still before allocating.
    header = {"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4 * 10**6]}}
    message = _refusal(_raw_file(tmp_path / "short.safetensors", header, b"\0" * 16))
    assert "is truncated or corrupt (tensor 'w' ends at byte 4000000 of a 16-byte body)" in message


@pytest.mark.parametrize(
    "header, body, expected",
    [
        (b"{not json", b"", "has a corrupt header (not JSON"),
        (b"[1, 2]", b"", "has a corrupt header (JSON list, not an object)"),
        (
            {"__metadata__": {"step": 3}},
            b"",
            "has corrupt metadata ({'step': 3}; expected strings)",
        ),
        ({"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "corrupt entry"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "shape [-1]"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "byte range"),
        (
            {
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            },
            b"\0" * 8,
            "overlapping or gapped",
        ),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 9, "5 bytes after"),
    ],
)
def test_malformed_headers_are_one_clear_error(tmp_path, header, body, expected):
    path = _raw_file(tmp_path / "x.safetensors", header, body)
    message = _refusal(path)
    assert message.startswith(f"{path} ") and expected in message
    assert "write it again" in message  # what to do, for a file outside a run folder


def test_header_lengths_beyond_the_file_or_the_format_limit(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\x05\0\0")
    assert "is truncated or corrupt (3 bytes" in _refusal(path)
    path.write_bytes(struct.pack("<Q", 1000) + b"{}")
    assert "is truncated or corrupt (its header needs 1000 bytes, 2 follow)" in _refusal(path)
    path.write_bytes(struct.pack("<Q", 2**63) + b"{}")
    assert f"declares a {2**63}-byte header, over the format's limit" in _refusal(path)


def _small_file(path: Path) -> dict[str, torch.Tensor]:
    tensors = {"w": torch.tensor([1.5, -2.0, 0.25]), "n": torch.tensor([7], dtype=torch.int64)}
    wio.save_tensors(tensors, path, {"note": json.dumps({"a": 1})})
    return tensors


def test_every_truncation_and_every_bit_flip_is_refused_or_harmless(tmp_path):
    path = tmp_path / "x.safetensors"
    tensors = _small_file(path)
    data = path.read_bytes()
    loaded, meta = wio.load_tensors(path)
    assert meta["note"] == {"a": 1} and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    refused = harmless = 0
    for n in range(len(data)):
        path.write_bytes(data[:n])
        _refusal(path)
        refused += 1
    for bit in range(8 * len(data)):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        try:
            loaded, _ = wio.load_tensors(path)
        except CheckpointError:
            refused += 1
            continue
        # Loaded: then the flip was in metadata text that the tensors do not depend on.
        assert loaded.keys() == tensors.keys()
        assert all(torch.equal(loaded[k], tensors[k]) for k in tensors), bit
        harmless += 1
    assert refused + harmless == 9 * len(data)
    # Every flip in the data section is caught by the checksum.
    body_start = len(data) - 3 * 4 - 8
    for bit in range(8 * body_start, 8 * len(data)):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        assert "fails its checksum" in _refusal(path)


def test_non_finite_values_are_refused_naming_the_file_and_tensor(tmp_path):
    for value in (math.nan, math.inf, -math.inf):
        path = tmp_path / "w.safetensors"
        # Written by another tool (no checksum) or by us: refused either way.
        tensors = {"enc.weight": torch.tensor([[0.0, value, 1.0]]), "ok": torch.zeros(2)}
        path.write_bytes(safetensors_bytes(tensors))
        assert f"{path} holds 1 NaN or infinite values in tensor 'enc.weight'" in _refusal(path)
        wio.save_tensors(tensors, path)
        assert "tensor 'enc.weight'" in _refusal(path)


# -- model files and checkpoints -------------------------------------------------------------------
def _tiny_model():
    return waekit.build_model("wae-mmd", (1, 12, 12), 2, "mlp", mlp_hidden=(8,))


def _rewrite_metadata(path: Path, **changes: str) -> None:
    """Re-serialise ``path`` with metadata keys replaced (tensors and checksum kept)."""
    infos, meta = wio.read_header(path)
    from safetensors.torch import load_file

    path.write_bytes(safetensors_bytes(load_file(str(path)), metadata={**meta, **changes}))


def test_model_metadata_garbage_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "model.safetensors"
    model = _tiny_model()
    waekit.save_model(model, path)
    loaded = waekit.load_model(path)
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True)
    )
    for garbage, expected in [
        ("{not json", "has corrupt model metadata ('Expecting property name"),
        ("[1, 2]", "has corrupt model metadata ('a JSON list, not an object')"),
        (
            '{"config": 3, "image_shape": [1, 12, 12]}',
            "has corrupt model metadata ('model metadata",
        ),
        (
            '{"config": {"name": "wae-mmd", "latent_dim": 2, "net": "mlp", "mlp_hidden": [8]},'
            ' "image_shape": [1, 12, 1e30]}',
            "has corrupt model metadata",
        ),
    ]:
        _rewrite_metadata(path, waekit_model=garbage)
        with pytest.raises(CheckpointError) as info:
            waekit.load_model(path)
        assert str(info.value).startswith(f"{path} {expected}"), str(info.value)
        assert f"retrain: waekit train --config {tmp_path / 'config.yaml'}" in str(info.value)


def test_model_metadata_describing_a_huge_model_is_refused_without_building_it(tmp_path):
    path = tmp_path / "model.safetensors"
    waekit.save_model(_tiny_model(), path)
    meta = json.loads(wio.read_metadata(path)["waekit_model"])
    for widths, expected in [
        # A valid config whose model would hold 2^32 weights (16 GiB): its shapes, taken on
        # the meta device, do not match the file's.
        ([2**16, 2**16], f"weights in {path} do not fit the model its metadata describes"),
        # Beyond what a config may say at all.
        ([2**20, 2**20], f"{path} has corrupt model metadata"),
    ]:
        meta["config"]["mlp_hidden"] = widths
        _rewrite_metadata(path, waekit_model=json.dumps(meta))
        t0 = time.perf_counter()
        with pytest.raises(CheckpointError) as info:
            waekit.load_model(path)
        assert time.perf_counter() - t0 < 2
        assert str(info.value).startswith(expected), str(info.value)


def test_checkpoint_metadata_schema(tmp_path):
    model = _tiny_model()
    opt = torch.optim.Adam(model.parameters())
    model.losses(torch.rand(4, 1, 12, 12))["loss"].backward()
    opt.step()
    path = tmp_path / "checkpoints" / "last.safetensors"
    save_checkpoint(path, model, {"ae": opt}, 5, {"best_loss": 1.5, "config": {}})
    assert (
        load_checkpoint(path, _tiny_model(), {"ae": torch.optim.Adam(model.parameters())})["step"]
        == 5
    )
    for key, value, expected in [
        ("step", '"five"', "step 'five' (expected a count)"),
        ("step", "-1", "step -1 (expected a count)"),
        ("optimizers", "[1]", "optimizers [1] (expected name -> state)"),
        ("best_loss", '"low"', "best_loss 'low' (expected a number or null)"),
        ("config", "7", "config 7 (expected a mapping)"),
    ]:
        save_checkpoint(path, model, {"ae": opt}, 5, {"best_loss": 1.5, "config": {}})
        _rewrite_metadata(path, **{key: value})
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path, _tiny_model(), {"ae": torch.optim.Adam(model.parameters())})
        assert f"{path} has corrupt checkpoint metadata: {expected}" in str(info.value)
        assert "retrain: waekit train --config" in str(info.value)


# -- bounded reprs --------------------------------------------------------------------------------
def test_brief_is_short_and_fast_on_bombs():
    alias = yaml.safe_load(
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
    )  # 10^9 leaves through aliases: its full repr would be gigabytes
    big_list = [123456789] * 12_500_000  # 100 MB of pointers
    big_text = "y" * 100_000_000
    for value, limit in [
        (alias, 80),
        (big_list, 80),
        (big_text, 80),
        (alias, 20),
        ({"k": big_list}, 200),
    ]:
        t0 = time.perf_counter()
        text = brief(value, limit)
        assert time.perf_counter() - t0 < 0.1
        assert len(text) <= limit
    assert brief([1, 2, 3]) == "[1, 2, 3]" and brief("ab") == "'ab'"
    assert brief(big_text) == "'" + "y" * 27 + "..." + "y" * 28 + "'"
    assert brief(list(range(100))) == "[0, 1, 2, 3, 4, 5, ...]"


# -- the command line's boundary -----------------------------------------------------------------
@pytest.mark.parametrize(
    "code, expected",
    [
        (
            errno.ENOSPC,
            "no space left on the device (or over quota) while writing {p}; free some "
            "space (see: df -h {d}) and run the command again",
        ),
        (errno.EROFS, "{p} is on a read-only file system; choose a folder on a writable one"),
        (errno.EACCES, "permission denied: {p}; check its permissions (see: ls -ld {d})"),
    ],
)
def test_file_system_faults_are_one_line_exit_1(tmp_path, monkeypatch, capsys, code, expected):
    from waekit.cli import main

    run = tmp_path / "run"
    waekit.save_model(_tiny_model(), run / "model.safetensors")
    (run / "config.yaml").write_text(
        "model: {name: wae-mmd, net: mlp, latent_dim: 2, mlp_hidden: [8]}\n"
    )
    out = tmp_path / "out" / "s.npz"
    real_open = os.open

    def refuse(path, flags, mode=0o777, **kw):
        if str(path).endswith(wio.TMP_SUFFIX):
            raise OSError(code, os.strerror(code), str(path))  # as the kernel names it
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(wio.os, "open", refuse)
    assert main(["sample", str(run), "-n", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: ") and expected.format(p=out, d=out.parent) in err


def test_out_naming_a_file_or_a_folder_is_one_line(tmp_path, capsys):
    from waekit.cli import main

    run = tmp_path / "run"
    waekit.save_model(_tiny_model(), run / "model.safetensors")
    (run / "config.yaml").write_text(
        "model: {name: wae-mmd, net: mlp, latent_dim: 2, mlp_hidden: [8]}\n"
    )
    (tmp_path / "afile").write_text("x")
    assert main(["sample", str(run), "-n", "2", "--out", str(tmp_path / "afile" / "s.npz")]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: {tmp_path / 'afile'} (or a folder on its path) is a file, not a folder; "
        "choose another path\n"
    )
    (tmp_path / "dir.npz").mkdir()
    assert main(["sample", str(run), "-n", "2", "--out", str(tmp_path / "dir.npz")]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'dir.npz'} is a folder, not a file; pass a file path\n"
    assert _temporaries(tmp_path) == []


def test_bugs_still_show_their_traceback(monkeypatch):
    from waekit import cli

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("waekit.run.load_run", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main(["sample", "somewhere"])


def test_ctrl_c_outside_training_exits_130_without_a_traceback(monkeypatch, capsys):
    from waekit import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("waekit.run.load_run", interrupted)
    assert cli.main(["sample", "somewhere"]) == 130  # 128 + SIGINT, as a shell reports it
    assert "Traceback" not in capsys.readouterr().err


def test_os_error_messages_name_the_path_and_the_fix():
    assert os_error_message(OSError(errno.ENOENT, "x", "/a/b.yaml")) == (
        "/a/b.yaml does not exist; check the path"
    )
    assert os_error_message(OSError(errno.EIO, "Input/output error", "/a/b")) == (
        "Input/output error: /a/b; check the path and the device, then run the command again"
    )
    assert "a file" in os_error_message(OSError(errno.ENOSPC, "No space left on device"))
    assert os_error_message(TimeoutError("timed out")) == (
        "network failure ('timed out'); check the connection and run the command again"
    )
    from urllib.error import URLError

    assert os_error_message(URLError("no route")).startswith("network failure (")
