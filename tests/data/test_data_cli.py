"""``waekit data ...`` through typer's test runner."""

from __future__ import annotations

from pathlib import Path

from data_writers import small_digits, write_idx_split
from typer.testing import CliRunner

from waekit.data.cli import data_app

runner = CliRunner()


def test_verify_prints_counts_per_split_and_class(shared_data: Path) -> None:
    result = runner.invoke(data_app, ["verify", "mnist", "--root", str(shared_data)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "test     10,000 images  1x28x28  mean pixel 33.79" in out
    assert "class 1: 1,135" in out and "class 5: 892" in out
    assert (
        "md5 t10k-images-idx3-ubyte.gz: matches the official md5 "
        "(9fb629c4189551a2d022fa330f9573f3)" in out
    )
    assert "md5 train-images-idx3-ubyte.gz: does not match the official md5 (f68b3c2d" in out
    assert "warning: train has 10,000 images; the official release has 60,000" in out
    fashion = runner.invoke(data_app, ["verify", "fashion-mnist", "--root", str(shared_data)])
    assert fashion.exit_code == 0 and "class 9 Ankle boot: 6,000" in fashion.stdout


def test_list_shows_presence(shared_data: Path) -> None:
    result = runner.invoke(data_app, ["list", "--root", str(shared_data)])
    assert result.exit_code == 0
    assert f"present in {shared_data / 'mnist'}" in result.stdout
    assert "cifar10" in result.stdout and "missing (downloadable)" in result.stdout
    assert f"`waekit data download cifar10 --root {shared_data}`" in result.stdout
    assert (
        "status:   your own files: `waekit train --set data.name=npz --set data.path=FILE.npz`"
        in (result.stdout)
    )


def test_errors_go_to_stderr_with_exit_code_1(offline: Path) -> None:
    result = runner.invoke(data_app, ["verify", "mnist", "--root", str(offline)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: mnist train split not found: put ")
    assert str(offline / "mnist") in result.stderr
    unknown = runner.invoke(data_app, ["prepare", "imagenet"])
    assert unknown.exit_code == 1
    assert "unknown data set 'imagenet'; the data sets are: mnist, fashion-mnist" in unknown.stderr
    celeba = runner.invoke(data_app, ["download", "celeba", "--root", str(offline)])
    assert celeba.exit_code == 1 and "cannot be downloaded automatically" in celeba.stderr
    offline_dl = runner.invoke(data_app, ["download", "mnist", "--root", str(offline)])
    assert offline_dl.exit_code == 1 and "Download failed" in offline_dl.stderr


def test_prepare_then_list(offline: Path) -> None:
    write_idx_split(offline / "mnist", "train", *small_digits(10))
    write_idx_split(offline / "mnist", "test", *small_digits(5))
    result = runner.invoke(
        data_app, ["prepare", "mnist", "--root", str(offline), "--image-size", "16"]
    )
    assert result.exit_code == 0, result.output
    assert str(offline / "mnist" / "prepared" / "train-16px.json") in result.stdout
    listing = runner.invoke(data_app, ["list", "--root", str(offline)])
    assert "prepared: test-16px, train-16px" in listing.stdout
    digits = runner.invoke(data_app, ["download", "digits"])
    assert digits.exit_code == 0 and digits.stdout.strip().endswith("mnist_5k.csv.gz")
