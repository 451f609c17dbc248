"""The command line end to end, in subprocesses, as a user runs it (and, after a run is
trained in one, its follow-up commands through the same entry point in this process: the
same code, without a torch import per command)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import waekit
from waekit.checkpoint import load_checkpoint
from waekit.cli import main
from waekit.run import load_run

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _mnist_npz(path: Path, n: int = 400) -> Path:
    """Real MNIST test digits as an .npz (synthetic strokes when the shared data is absent)."""
    src = SHARED / "mnist" / "t10k-images-idx3-ubyte.gz"
    if src.is_file():
        raw = gzip.open(src).read()
        images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n]
        labels = np.frombuffer(
            gzip.open(src.with_name("t10k-labels-idx1-ubyte.gz")).read(), np.uint8, offset=8
        )[:n]
    else:
        rng = np.random.default_rng(0)
        images = np.zeros((n, 28, 28), np.uint8)
        for img in images:
            r, c = rng.integers(4, 20, 2)
            img[r : r + 6, c : c + 2] = 255
        labels = rng.integers(0, 10, n)
    np.savez(path, images=images, labels=labels)
    return path


def _config(tmp_path: Path, steps: int = 6, **train) -> Path:
    cfg = {
        "model": {"name": "wae-mmd", "net": "small", "latent_dim": 2},
        "data": {"name": "npz", "path": str(_mnist_npz(tmp_path / "digits.npz"))},
        "train": {
            "steps": steps,
            "batch_size": 20,
            "log_every": 2,
            "image_every": 3,
            "checkpoint_every": 3,
            "holdout": 20,
            **train,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def waekit_cli(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "waekit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        **kw,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"waekit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def waekit_main(capsys, *args: str) -> str:
    """``waekit ARGS`` through :func:`waekit.cli.main` in this process; its stdout."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, f"waekit {' '.join(args)} exited {code}:\n{out}\n{err}"
    return out


@pytest.mark.slow
def test_train_then_sample_reconstruct_interpolate_encode(tmp_path, capsys):
    run = tmp_path / "run"
    waekit_cli(
        "train",
        "--config",
        str(_config(tmp_path)),
        "--out",
        str(run),
        "--no-progress",
        "--no-report",
    )
    for name in (
        "config.yaml",
        "model.safetensors",
        "metrics.jsonl",
        "checkpoints/last.safetensors",
        "images/samples-000006.png",
        "images/recon-000006.png",
    ):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [2, 4, 6]

    waekit_main(capsys, "sample", str(run), "-n", "10", "--out", str(tmp_path / "s.npz"))
    samples = np.load(tmp_path / "s.npz")["images"]
    assert samples.shape == (10, 1, 28, 28) and samples.dtype == np.uint8
    # The CLI's samples are the model's decoded prior draws for seed 0.
    model = waekit.load_model(run / "model.safetensors")
    from waekit.generate import sample

    assert np.array_equal(samples, sample(model, 10, seed=0))

    waekit_main(capsys, "sample", str(run), "-n", "16", "--nrow", "4")
    grid = np.asarray(Image.open(run / "samples.png"))
    assert grid.shape[:2] == (4 * 30 + 2, 4 * 30 + 2)

    waekit_main(capsys, "reconstruct", str(run), "-n", "8", "--nrow", "4")
    assert np.asarray(Image.open(run / "reconstructions.png")).shape[:2] == (4 * 30 + 2, 4 * 30 + 2)

    waekit_main(capsys, "interpolate", str(run), "--pairs", "2", "--steps", "5")
    assert np.asarray(Image.open(run / "interpolations.png")).shape[:2] == (2 * 30 + 2, 5 * 30 + 2)

    waekit_main(capsys, "encode", str(run), "--out", str(tmp_path / "codes.npz"))
    codes = np.load(tmp_path / "codes.npz")
    assert codes["codes"].shape == (40, 2) and codes["labels"].shape == (40,)
    assert np.isfinite(codes["codes"]).all()
    # Without --out the codes go into the run folder, named after the split.
    printed = waekit_main(capsys, "encode", str(run))
    assert f"wrote {run / 'codes-test.npz'}" in printed
    assert np.array_equal(np.load(run / "codes-test.npz")["codes"], codes["codes"])


@pytest.mark.slow
def test_sigterm_leaves_a_loadable_checkpoint_and_resume_finishes(tmp_path):
    run = tmp_path / "run"
    cfg = _config(tmp_path, steps=100000, checkpoint_every=5, image_every=0)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "waekit",
            "train",
            "--config",
            str(cfg),
            "--out",
            str(run),
            "--no-progress",
            "--no-report",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last.safetensors").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGTERM received: checkpoint saved at step" in err and "--resume" in err
    model = waekit.load_model(run / "model.safetensors")
    meta = load_checkpoint(run / "checkpoints" / "last.safetensors", model, {}, restore_rng=False)
    stopped_at = meta["step"]
    assert stopped_at >= 5
    # --resume continues from the saved config; --set may change the length.
    waekit_cli(
        "train",
        "--out",
        str(run),
        "--resume",
        "--set",
        f"train.steps={stopped_at + 4}",
        "--no-progress",
        "--no-report",
    )
    meta = load_checkpoint(run / "checkpoints" / "last.safetensors", model, {}, restore_rng=False)
    assert meta["step"] == stopped_at + 4


def cli_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (fast: no new interpreter); returns (code, stdout, stderr)."""
    from waekit.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


def test_bad_flags_presets_and_keys_are_clear_errors(tmp_path, capsys):
    out = str(tmp_path / "x")
    code, _, err = cli_in_process(capsys, "train", "--preset", "wae-mmd-mnistt")
    assert code == 1 and "unknown preset 'wae-mmd-mnistt'; the presets are:" in err
    assert err.endswith("wae-mmd-celeba, wae-mmd-mnist")

    code, _, err = cli_in_process(capsys, "train", "--set", "model.lamda=3", "--out", out)
    assert code == 1 and "unknown key model.lamda; the keys of 'model' are:" in err

    code, _, err = cli_in_process(capsys, "train", "--set", "train.batch_size=ten", "--out", out)
    assert code == 1 and "train.batch_size='ten' has the wrong type: expected an integer" in err

    infovae = ("--set", "model.name=infovae", "--set", "model.alpha=0", "--set", "model.lam=0.001")
    code, _, err = cli_in_process(capsys, "train", *infovae, "--out", out)
    assert code == 1 and "InfoVAE needs alpha + lam >= 1" in err

    code, _, err = cli_in_process(capsys, "train", "--set", "nodot", "--out", out)
    assert code == 1 and "override 'nodot' must look like section.key=value" in err

    code, _, err = cli_in_process(capsys, "train", "--sett", "x")
    assert code == 2 and "No such option: --sett" in err

    code, _, err = cli_in_process(capsys, "train", "--config", str(tmp_path / "missing.yaml"))
    assert code == 1 and "missing.yaml' does not exist" in err
    assert not (tmp_path / "x").exists()  # nothing was started


def test_missing_or_corrupt_run_folder_is_a_clear_error(tmp_path, capsys):
    code, _, err = cli_in_process(capsys, "sample", str(tmp_path / "nope"))
    assert code == 1 and "run folder" in err and "does not exist" in err

    run = tmp_path / "run"
    run.mkdir()
    code, _, err = cli_in_process(capsys, "sample", str(run))
    assert code == 1 and "config.yaml is missing" in err

    model = waekit.build_model("wae-mmd", (1, 28, 28), 2, "small")
    waekit.save_model(model, run / "model.safetensors")
    (run / "config.yaml").write_text(waekit.RunConfig(model=model.config).to_yaml())
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated by a crash
    code, _, err = cli_in_process(capsys, "sample", str(run))
    assert code == 1 and "model.safetensors" in err and "truncated or corrupt" in err

    (run / "config.yaml").write_text("model: {name: wae-mmd, lam: -1}\n")
    code, _, err = cli_in_process(capsys, "sample", str(run))
    assert code == 1 and "model.lam=-1" in err


def test_help_explains_every_command(capsys):
    code, out, _ = cli_in_process(capsys, "--help")
    assert code == 0
    for command in (
        "train",
        "sample",
        "reconstruct",
        "interpolate",
        "encode",
        "evaluate",
        "report",
        "compare",
        "data",
        "presets",
    ):
        assert command in out
        code, sub, _ = cli_in_process(capsys, command, "--help")
        assert code == 0 and "Usage: waekit " + command in " ".join(sub.split())
    # The overview names what the quickstart writes and how FID is added to it.
    flat = " ".join(out.split())
    assert (
        "writes runs/quickstart/report.html" in flat and "waekit evaluate runs/quickstart" in flat
    )
    # A module run works too (torchrun -m waekit relies on it).
    assert "Usage: waekit" in " ".join(waekit_cli("--help").stdout.split())


def test_presets_match_the_wae_paper():
    wae = waekit.load_config(preset="wae-mmd-mnist")
    assert (wae.model.latent_dim, wae.model.lam, wae.model.kernel, wae.model.prior_var) == (
        8,
        10,
        "imq",
        1,
    )
    assert wae.model.scales == waekit.WAE_SCALES and wae.model.recon == "l2"
    assert (wae.train.batch_size, wae.train.lr, wae.train.betas[0], wae.train.epochs) == (
        100,
        1e-3,
        0.5,
        100,
    )
    assert wae.train.lr_milestones == (30, 50) and wae.train.lr_factors == (0.5, 0.2)
    gan = waekit.load_config(preset="wae-gan-celeba")
    assert (gan.model.latent_dim, gan.model.prior_var, gan.model.lam, gan.model.critic_hidden) == (
        64,
        2,
        1,
        1024,
    )
    # The official code's 0.05 on [-1, 1] pixels is 0.2 on [0, 1]; its CelebA config turns
    # the log-prior trick on.
    assert (gan.train.lr, gan.train.critic_lr, gan.model.recon_scale) == (3e-4, 1e-3, 0.2)
    assert gan.model.critic_log_prior is True
    one_d = waekit.load_config(preset="wae-gan-mnist-1d")
    # Seed 004's lambda = 0.001 against a per-pixel MEAN squared error is 0.784 against the
    # per-image SUM used here, with Adam's epsilon scaled alike; its encoder has batch norm,
    # its decoder none.
    assert (one_d.model.latent_dim, one_d.model.lam, one_d.model.prior_var, one_d.train.lr) == (
        1,
        pytest.approx(1e-3 * 28 * 28),
        4.0,
        8e-5,
    )
    assert one_d.model.decoder_batch_norm is False and one_d.model.batch_norm is True
    assert one_d.train.batch_size == 218 and one_d.train.adam_eps == pytest.approx(784e-8)
    assert set(waekit.preset_names()) >= {
        "quickstart",
        "vae-mnist",
        "wae-mmd-mnist",
        "wae-gan-mnist",
        "infovae-mnist",
        "vae-celeba",
        "wae-mmd-celeba",
        "wae-gan-celeba",
        "wae-gan-mnist-1d",
    }


def test_seeds_train_one_run_folder_per_seed(tmp_path, capsys):
    cfg = str(_config(tmp_path, steps=2, image_every=0, checkpoint_every=0))
    quiet = ("--no-progress", "--no-report")
    out = tmp_path / "runs"
    code, stdout, _ = cli_in_process(
        capsys, "train", "--config", cfg, "--out", str(out), "--seeds", "0, 3", *quiet
    )
    assert code == 0
    assert f"compare the seeds: waekit compare {out / 'seed-0'} {out / 'seed-3'}" in stdout
    seeds = [load_run(out / f"seed-{s}").config.train.seed for s in (0, 3)]
    assert seeds == [0, 3]
    a, b = (waekit.load_model(out / f"seed-{s}" / "model.safetensors") for s in (0, 3))
    assert not all(
        np.array_equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )
    # --resume continues every seed's folder with its own stored config.
    more = ("--set", "train.steps=3")
    code, _, _ = cli_in_process(
        capsys, "train", "--out", str(out), "--seeds", "0,3", "--resume", *more, *quiet
    )
    assert code == 0
    for s in (0, 3):
        meta = load_checkpoint(out / f"seed-{s}/checkpoints/last.safetensors", a, {}, False)
        assert meta["step"] == 3 and meta["config"]["train"]["seed"] == s

    for bad in ("0,,1", "1,1", "-1", "a,b", ""):
        code, _, err = cli_in_process(capsys, "train", "--config", cfg, "--seeds", bad, *quiet)
        assert code == 2 and "give distinct non-negative integers separated by commas" in err
    code, _, err = cli_in_process(
        capsys, "train", "--config", cfg, "--seeds", "1,2", "--set", "train.seed=4", *quiet
    )
    assert code == 2 and "not both" in err
    assert sorted(p.name for p in out.iterdir()) == ["seed-0", "seed-3"]  # nothing else made


def test_resume_through_the_cli_keeps_the_stored_config(tmp_path, capsys):
    cfg = str(_config(tmp_path, steps=2, image_every=0, checkpoint_every=0))
    run = tmp_path / "run"
    quiet = ("--no-progress", "--no-report")
    assert cli_in_process(capsys, "train", "--config", cfg, "--out", str(run), *quiet)[0] == 0
    code, _, err = cli_in_process(
        capsys, "train", "--out", str(run), "--resume", "--set", "model.lam=3", *quiet
    )
    assert code == 1 and "model.lam (stored 10.0, given 3.0)" in err
    (run / "config.yaml").unlink()  # restored from the checkpoint
    code, _, err = cli_in_process(
        capsys, "train", "--out", str(run), "--resume", "--set", "train.steps=3", *quiet
    )
    assert code == 0, err
    assert load_run(run).config.train.steps == 3
    assert load_run(run).config.data.path == str(tmp_path / "digits.npz")
    code, _, err = cli_in_process(capsys, "train", "--config", cfg, "--out", cfg, *quiet)
    assert code == 1 and "is a file, not a folder" in err
