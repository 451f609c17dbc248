"""The trainer: exact resume, signals, divergence detection, schedules, batching, checkpoints."""

from __future__ import annotations

import json
import math
import signal

import pytest
import torch
from blobs import blobs

import waekit
from waekit.checkpoint import load_checkpoint
from waekit.config import RunConfig, config_from_dict
from waekit.errors import CheckpointError, ConfigError, TrainingDiverged, TrainingInterrupted
from waekit.train import DeviceBatches, Trainer, lr_factor

_data = blobs


def _config(name: str = "wae-mmd", net: str = "mlp", **train) -> RunConfig:
    train_cfg = {
        "steps": 8,
        "batch_size": 16,
        "lr": 1e-3,
        "log_every": 2,
        "checkpoint_every": 4,
        "holdout": 16,
        "schedule": "wae",
        "lr_milestones": [0.5],
        "lr_factors": [0.5],
    }
    train_cfg.update(train)
    return config_from_dict(
        {
            "model": {
                "name": name,
                "net": net,
                "latent_dim": 2,
                "mlp_hidden": [32],
                "critic_hidden": 16,
                "critic_layers": 2,
            },
            "data": {"name": "npz"},
            "train": train_cfg,
        }
    )


def _trainer(cfg, out, **kw) -> Trainer:
    return Trainer(cfg, out, data=_data(), test_data=_data(32, seed=1), progress=False, **kw)


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.clone() for k, v in trainer.model.state_dict().items()}
    for name, opt in trainer.optimizers.items():
        for i, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                out[f"{name}.{i}.{k}"] = torch.as_tensor(v).clone()
    return out


@pytest.mark.parametrize(
    ("name", "net"), [("wae-mmd", "mlp"), ("wae-gan", "mlp"), ("vae", "mlp"), ("swae", "small")]
)
def test_resume_gives_the_same_weights_as_not_stopping(tmp_path, name, net):
    straight = _trainer(_config(name, net), tmp_path / "a")
    straight.fit()

    stopped = _trainer(_config(name, net), tmp_path / "b")
    original_step = stopped.train_step

    def step_then_signal(x):
        out = original_step(x)
        if stopped.step == 4:  # the 5th step: the loop saves and stops after it
            stopped._stop_signal = signal.SIGTERM
        return out

    stopped.train_step = step_then_signal
    with pytest.raises(TrainingInterrupted, match="SIGTERM received: checkpoint saved at step 5"):
        stopped.fit()
    resumed = _trainer(_config(name, net), tmp_path / "b", resume=True)
    assert resumed.step == 5
    resumed.fit()

    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # The metrics file of the resumed run has each step once.
    steps = [
        r["step"]
        for r in map(json.loads, (tmp_path / "b/metrics.jsonl").read_text().split("\n")[:-1])
        if r["kind"] == "train"
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 8


def test_run_folder_is_complete_and_loadable(tmp_path):
    trainer = _trainer(_config(image_every=4), tmp_path)
    run = trainer.fit()
    for name in (
        "config.yaml",
        "model.safetensors",
        "metrics.jsonl",
        "checkpoints/last.safetensors",
        "checkpoints/best.safetensors",
        "images/samples-000008.png",
        "images/recon-000008.png",
    ):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    records = run.metrics()
    train_records = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train_records] == [2, 4, 6, 8]
    assert all(math.isfinite(r["loss"]) and r["images_per_s"] > 0 for r in train_records)
    # loss = recon + lam * mmd, recorded as means over the logging window
    r = train_records[-1]
    assert r["loss"] == pytest.approx(r["recon"] + 10.0 * r["mmd"], rel=1e-5)
    # the WAE schedule halves the lr from epoch 0.5 on: 96 images / batch 16 = 6 steps an epoch
    assert r["lr"] == pytest.approx(0.5e-3)
    evals = [r for r in records if r["kind"] == "eval"]
    assert [e["step"] for e in evals] == [4, 8]
    # The saved config round-trips, and the saved model reproduces the trainer's outputs.
    assert run.config == _config(image_every=4)
    x = torch.rand(5, 1, 12, 12)
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(trainer.model.reconstruct(x), run.model.reconstruct(x))
    meta = load_checkpoint(tmp_path / "checkpoints/last.safetensors", run.model, {})
    assert meta["step"] == 8


def test_refuses_to_overwrite_an_existing_run(tmp_path):
    _trainer(_config(steps=2), tmp_path).fit()
    with pytest.raises(ConfigError, match="already holds a run; pass --resume"):
        _trainer(_config(steps=2), tmp_path).fit()


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(
        CheckpointError, match="--resume was given but .*last.safetensors does not exist"
    ):
        _trainer(_config(), tmp_path, resume=True).fit()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = _trainer(_config(steps=12, log_every=1, checkpoint_every=4), tmp_path)
    original = trainer.model.losses

    def poisoned(x, post=None):
        terms = original(x, post)
        if trainer.step >= 6:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    trainer.model.losses = poisoned
    trainer._loss_fn = lambda x, post=None: poisoned(x, post)
    with pytest.raises(
        TrainingDiverged, match="non-finite between steps 6 and 7.*last good checkpoint"
    ):
        trainer.fit()
    state = waekit.load_model(tmp_path / "model.safetensors")
    assert all(torch.isfinite(p).all() for p in state.parameters())
    meta = load_checkpoint(tmp_path / "checkpoints/last.safetensors", state, {}, restore_rng=False)
    assert meta["step"] == 4


def test_wae_schedule_and_cosine():
    cfg = RunConfig().train  # WAE paper: /2 at epoch 30, /5 more at epoch 50
    assert lr_factor(cfg, 29 * 600, 600, 60000) == 1.0
    assert lr_factor(cfg, 30 * 600, 600, 60000) == 0.5
    assert lr_factor(cfg, 50 * 600, 600, 60000) == pytest.approx(0.1)
    cos = _config(schedule="cosine").train
    assert lr_factor(cos, 0, 10, 100) == 1.0
    assert lr_factor(cos, 50, 10, 100) == pytest.approx(0.5)
    assert lr_factor(cos, 100, 10, 100) == pytest.approx(0.0, abs=1e-12)


def test_device_batches_cover_each_epoch_once_and_split_over_ranks():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1)
    whole = DeviceBatches(images, 8, seed=3)
    seen = torch.cat([whole.batch(s) for s in range(5)]).flatten() * 255
    assert sorted(seen.round().long().tolist()) == list(range(40))
    next_epoch = torch.cat([whole.batch(s) for s in range(5, 10)]).flatten()
    assert not torch.equal(next_epoch, seen / 255)  # reshuffled
    halves = [DeviceBatches(images, 8, seed=3, rank=r, world=2) for r in range(2)]
    for s in range(7):
        assert torch.equal(torch.cat([h.batch(s) for h in halves]), whole.batch(s))
    with pytest.raises(ConfigError, match="does not split over 3 processes"):
        DeviceBatches(images, 8, seed=0, world=3)
    with pytest.raises(ConfigError, match="larger than the data set"):
        DeviceBatches(images, 64, seed=0)


def test_adversarial_step_trains_the_critic(tmp_path):
    trainer = _trainer(_config("wae-gan", steps=6, checkpoint_every=0), tmp_path)
    before = [p.clone() for p in trainer.model.critic_parameters()]
    trainer.fit()
    after = list(trainer.model.critic_parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    records = [r for r in trainer.out.joinpath("metrics.jsonl").read_text().splitlines()]
    assert "critic" in json.loads(records[0])


@pytest.mark.slow
@pytest.mark.parametrize("batch_norm", [False, True])
def test_one_dimensional_preset_keeps_its_decoder_out_of_saturation(tmp_path, batch_norm):
    # Seed 004's 1-D WAE-GAN on real digits. With batch norm in the decoder (not the preset),
    # the logits on the transposed convolutions' 4-pixel grid climb far above the rest
    # within 30 steps, where the sigmoid saturates and the cost can no longer pull them back.
    cfg = waekit.load_config(
        preset="wae-gan-mnist-1d",
        overrides=[
            f"data.root={tmp_path / 'data'}",
            "data.download=false",
            "data.fallback=true",
            "train.steps=30",
            "train.holdout=0",
            "train.log_every=1000",
            f"model.batch_norm={str(batch_norm).lower()}",
        ],
    )
    if batch_norm:  # the preset itself has none
        assert waekit.load_config(preset="wae-gan-mnist-1d").model.batch_norm is False
    model = Trainer(cfg, tmp_path / "run", progress=False).fit().model.eval()
    with torch.no_grad():
        logits = model.decode_logits(model.sample_prior(200, torch.Generator().manual_seed(0)))
    grid = logits[:, 0, 4::4, 4::4].mean().item()
    off_grid = logits[:, 0, 5::4, 5::4].mean().item()
    if batch_norm:
        assert grid > off_grid + 3.0
    else:
        assert grid < 0.0 and abs(grid - off_grid) < 1.5
