"""The peer comparison trains the same objective: pythae's losses, on waekit's networks with
the same weights, batch and random draws, equal waekit's (bench/pythae_peer.py relies on it)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from waekit.config import load_config
from waekit.models import model_from_config

pytest.importorskip("pythae", reason="pythae (the `dev` extra) is needed for the peer check")

ROOT = Path(__file__).resolve().parents[1]


def _peer_module():
    spec = importlib.util.spec_from_file_location("pythae_peer", ROOT / "bench/pythae_peer.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["pythae_peer"] = module
    spec.loader.exec_module(module)
    return module


def _pair(preset: str):
    config = load_config(preset=preset, overrides=["model.net=small"])
    torch.manual_seed(0)
    model = model_from_config(config.model, (1, 28, 28)).double()
    return model, _peer_module()._pythae_model(model, config).double()


def _images(n: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 28, 28, generator=g, dtype=torch.float64)


def test_pythae_wae_mmd_loss_equals_waekit():
    model, peer = _pair("wae-mmd-mnist")
    model.train(), peer.train()
    x = _images()
    prior = torch.randn(len(x), 8, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    ours = model.losses(x, prior=prior)
    z = peer.encoder(x).embedding
    recon_x = peer.decoder(z)["reconstruction"]
    loss, recon, mmd = peer.loss_function(recon_x, x, z, prior)
    # waekit computes the cost and the MMD in float32 (for mixed precision): equal to ~1e-7.
    assert recon.item() == pytest.approx(ours["recon"].mean().item(), rel=1e-6)
    assert mmd.item() == pytest.approx(ours["mmd"].item(), rel=1e-5)
    assert loss.item() == pytest.approx(ours["loss"].item(), rel=1e-6)
    assert peer.model_config.reg_weight == model.config.lam == 10.0


def test_pythae_vae_loss_equals_waekit():
    model, peer = _pair("vae-mnist")
    x = _images()
    post = model.posterior(x, sample=True, eps=torch.randn(len(x), 8, dtype=x.dtype))
    ours = model.losses(x, post=post)
    out = peer.encoder(x)
    torch.testing.assert_close(out.embedding, post.mu)
    recon_x = peer.decoder(post.z)["reconstruction"]
    loss, recon, kld = peer.loss_function(recon_x, x, out.embedding, out.log_covariance, post.z)
    # pythae's BCE takes probabilities, waekit's Bernoulli cost takes logits: equal up to
    # rounding where no probability saturates (these untrained logits are moderate); waekit
    # computes the cost in float32.
    assert recon.item() == pytest.approx(ours["recon"].mean().item(), rel=1e-6)
    assert kld.item() == pytest.approx(ours["kl"].mean().item(), rel=1e-9)
    assert loss.item() == pytest.approx(ours["loss"].item(), rel=1e-6)


def test_peer_shares_parameters_with_the_waekit_model():
    model, peer = _pair("wae-mmd-mnist")
    ours = {id(p) for p in model.autoencoder_parameters()}
    theirs = {id(p) for p in peer.parameters()}
    assert ours == theirs  # training pythae's model trains the waekit model in place
