"""Objectives: every model's loss against an independent recomputation, gradients, one
optimiser step, save/load round trips, and the config errors a user can hit."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import waekit
from waekit import divergences as dv
from waekit.io import save_tensors
from waekit.models import VAE, WAEGAN, LatentAutoEncoder

SHAPE = (1, 12, 12)  # divisible by 4, as the 'small' conv decoder needs
N = 16

# (test id, model name, extra config fields)
CASES = [
    ("ae", "ae", {}),
    ("vae", "vae", {}),
    ("beta-vae", "beta-vae", {}),
    ("wae-mmd", "wae-mmd", {}),
    ("wae-gan", "wae-gan", {}),
    ("aae", "aae", {}),
    ("infovae", "infovae", {}),
    ("infovae-gan", "infovae", {"divergence": "gan"}),
    ("swae", "swae", {}),
]
PENALTY_TERMS = {
    "ae": set(),
    "vae": {"kl"},
    "beta-vae": {"kl"},
    "wae-mmd": {"mmd"},
    "wae-gan": {"adv"},
    "aae": {"adv"},
    "infovae": {"kl", "mmd"},
    "infovae-gan": {"kl", "adv"},
    "swae": {"sw"},
}
PER_IMAGE_TERMS = {"recon", "kl", "adv"}


def tiny(name: str, net: str = "mlp", shape=SHAPE, seed: int = 0, **fields) -> LatentAutoEncoder:
    torch.manual_seed(seed)
    small = {"mlp_hidden": (32,), "critic_hidden": 16, "critic_layers": 2}
    fields = {**{k: v for k, v in small.items() if k in waekit.MODELS[name].fields}, **fields}
    return waekit.build_model(name, shape, fields.pop("latent_dim", 4), net, **fields)


def batch(shape=SHAPE, n: int = N, seed: int = 123) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


def case_params(nets=("mlp", "small")):
    return [
        pytest.param(name, fields, net, id=f"{cid}-{net}")
        for cid, name, fields in CASES
        for net in nets
    ]


def _case_id(name: str, fields: dict) -> str:
    return "infovae-gan" if fields.get("divergence") == "gan" else name


# -- helpers written independently of the library ------------------------------------------


def l2_cost(x: torch.Tensor, logits: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return scale * ((x - torch.sigmoid(logits)) ** 2).sum(dim=(1, 2, 3))


def bce_cost(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    return -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(dim=(1, 2, 3))


def kl_to_prior(mu: torch.Tensor, logvar: torch.Tensor, prior_var: float = 1.0) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(0, prior_var)) per image."""
    var = logvar.exp()
    return 0.5 * ((mu**2 + var) / prior_var - 1 - logvar + math.log(prior_var)).sum(dim=1)


def check_all_parameters_have_gradients(named_params) -> None:
    for pname, p in named_params:
        assert p.grad is not None, f"no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient in {pname}"
        assert p.grad.abs().sum() > 0, f"zero gradient in {pname}"


def losses_at(model: LatentAutoEncoder, x: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # the same prior draws and reparameterisation noise every time
    return model.losses(x)


def check_gradients_and_one_step(model: LatentAutoEncoder, x: torch.Tensor, lr: float) -> None:
    """Finite loss terms of the right shapes; gradients reach every encoder and decoder
    parameter (and, through ``critic_loss`` on detached codes, every critic parameter);
    one Adam step on the auto-encoder lowers the loss at fixed noise."""
    model.train()
    out = losses_at(model, x, 7)
    for key, value in out.items():
        assert torch.isfinite(value).all(), key
        assert value.shape == ((len(x),) if key in PER_IMAGE_TERMS else ()), key
    before = out["loss"]
    before.backward()
    check_all_parameters_have_gradients(
        list(model.encoder.named_parameters()) + list(model.decoder.named_parameters())
    )
    ae_grads = [p.grad.clone() for p in model.autoencoder_parameters()]
    if model.critic is not None:
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            z = model.posterior(x).z
        critic = model.critic_loss(z.detach())
        assert critic.shape == () and torch.isfinite(critic)
        critic.backward()
        check_all_parameters_have_gradients(model.critic.named_parameters())
        assert all(p.grad is None for p in model.autoencoder_parameters())  # codes detached
        for p, g in zip(model.autoencoder_parameters(), ae_grads, strict=True):
            p.grad = g
    opt = torch.optim.Adam(model.autoencoder_parameters(), lr=lr)
    opt.step()
    with torch.no_grad():
        after = losses_at(model, x, 7)["loss"]
    assert after.item() < before.item()


def check_round_trip(model: LatentAutoEncoder, x: torch.Tensor, tmp_path) -> None:
    """save_model / load_model reproduce the model exactly, in eval mode."""
    model.eval()
    path = waekit.save_model(model, tmp_path / "model.safetensors")
    loaded = waekit.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config and loaded.image_shape == model.image_shape
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x))
        assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
        z = torch.randn(3, model.config.latent_dim)
        assert torch.equal(loaded.decode(z), model.decode(z))
        if model.critic is not None:
            assert torch.equal(loaded.critic_logits(z), model.critic_logits(z))
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["config"]["name"] == model.config.name
    assert meta["image_shape"] == list(model.image_shape)


# -- the table ------------------------------------------------------------------------------


def test_models_table_names_every_model_once():
    assert set(waekit.MODELS) == {
        "ae",
        "vae",
        "beta-vae",
        "wae-mmd",
        "wae-gan",
        "aae",
        "infovae",
        "swae",
    }
    assert waekit.MODELS["beta-vae"].cls is VAE and waekit.MODELS["aae"].cls is WAEGAN
    for name, spec in waekit.MODELS.items():
        model = tiny(name)
        assert type(model) is spec.cls and model.config.name == name


def test_adversarial_models_and_gaussian_encoders():
    for cid, name, fields in CASES:
        model = tiny(name, **fields)
        adversarial = cid in ("wae-gan", "aae", "infovae-gan")
        assert (model.critic is not None) == adversarial, cid
        gaussian = name in ("vae", "beta-vae", "aae", "infovae")
        assert model.config.gaussian == gaussian, cid
        ae_params = {id(p) for p in model.autoencoder_parameters()}
        critic_params = {id(p) for p in model.critic_parameters()}
        assert not ae_params & critic_params
        assert ae_params | critic_params == {id(p) for p in model.parameters()}


# -- every model, every small net -----------------------------------------------------------


@pytest.mark.parametrize("name,fields,net", case_params())
def test_losses_gradients_and_one_adam_step(name, fields, net):
    model = tiny(name, net, **fields)
    x = batch()
    with torch.no_grad():
        terms = set(losses_at(model.train(), x, 1))
    assert terms == {"recon", "loss"} | PENALTY_TERMS[_case_id(name, fields)]
    check_gradients_and_one_step(model, x, lr=1e-4)


@pytest.mark.parametrize("name,fields,net", case_params())
def test_save_load_round_trip_is_exact(name, fields, net, tmp_path):
    model = tiny(name, net, **fields).train()
    x = batch()
    with torch.no_grad():
        model.losses(x)  # moves batch-norm running statistics away from their initial values
    check_round_trip(model, x, tmp_path)


# -- the paper's conv nets, once per image size ---------------------------------------------


# A big net takes a smaller step: over ~20-40M parameters the second-order term of an
# Adam step (each parameter moves by about lr) outgrows the first-order decrease at 1e-4.


def test_mnist_conv_wae_mmd_trains_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = waekit.build_model("wae-mmd", (1, 28, 28), 8, "conv")
    x = batch((1, 28, 28), n=4)
    check_gradients_and_one_step(model, x, lr=1e-5)
    check_round_trip(model, x[:2], tmp_path)


def test_celeba_conv_vae_trains_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = waekit.build_model("vae", (3, 64, 64), 64, "conv", recon="l2", recon_scale=0.05)
    x = batch((3, 64, 64), n=2)
    check_gradients_and_one_step(model, x, lr=1e-5)
    check_round_trip(model, x, tmp_path)


def test_small_conv_wae_gan_on_mnist_size_images(tmp_path):
    model = tiny("wae-gan", "small", shape=(1, 28, 28))
    x = batch((1, 28, 28), n=8)
    check_gradients_and_one_step(model, x, lr=1e-4)
    check_round_trip(model, x, tmp_path)


# -- loss values against independent recomputation ------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{}, {"kernel": "rbf", "prior_var": 2.0, "lam": 3.0, "recon_scale": 0.05}],
)
def test_wae_mmd_loss_is_recon_plus_lambda_mmd(fields):
    model = tiny("wae-mmd", **fields).train()
    cfg = model.config
    x = batch()
    out = losses_at(model, x, 11)
    torch.manual_seed(11)  # regenerate the same prior draws
    with torch.no_grad():
        z = model.encoder(x)
        prior = torch.randn(N, cfg.latent_dim) * math.sqrt(cfg.prior_var)
        recon = l2_cost(x, model.decoder(z), cfg.recon_scale)
    mmd = dv.mmd2(z.double(), prior.double(), cfg.kernel, cfg.scales, cfg.prior_var)
    torch.testing.assert_close(out["recon"].detach(), recon)
    assert out["mmd"].item() == pytest.approx(mmd.item(), abs=1e-5)
    expected = recon.mean() + cfg.lam * mmd
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert cfg.lam == fields.get("lam", 10.0)


@pytest.mark.parametrize(
    "name,fields,beta,prior_var",
    [("vae", {}, 1.0, 1.0), ("beta-vae", {}, 4.0, 1.0), ("vae", {"prior_var": 2.0}, 1.0, 2.0)],
)
def test_vae_loss_is_recon_plus_beta_kl(name, fields, beta, prior_var):
    model = tiny(name, **fields).train()
    x = batch()
    out = losses_at(model, x, 12)
    torch.manual_seed(12)  # the same reparameterisation noise
    with torch.no_grad():
        mu, logvar = model.encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = bce_cost(x, model.decoder(z))
        kl = kl_to_prior(mu, logvar, prior_var)
    torch.testing.assert_close(out["recon"].detach(), recon)
    torch.testing.assert_close(out["kl"].detach(), kl)
    expected = recon.mean() + beta * kl.mean()
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize(
    "fields",
    [
        {"alpha": 0.5, "lam": 2.0, "prior_var": 1.5, "kernel": "rbf", "scales": (1.0,)},
        {},  # the MMD-VAE: alpha = 1, lam = 1000, no KL term
    ],
)
def test_infovae_loss_weights(fields):
    model = tiny("infovae", **fields).train()
    cfg = model.config
    x = batch()
    out = losses_at(model, x, 13)
    torch.manual_seed(13)
    with torch.no_grad():
        mu, logvar = model.encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        prior = torch.randn(N, cfg.latent_dim) * math.sqrt(cfg.prior_var)
        recon = bce_cost(x, model.decoder(z))
        kl = kl_to_prior(mu, logvar, cfg.prior_var)
    mmd = dv.mmd2(z.double(), prior.double(), cfg.kernel, cfg.scales, cfg.prior_var).item()
    torch.testing.assert_close(out["kl"].detach(), kl)
    assert out["mmd"].item() == pytest.approx(mmd, abs=1e-5)
    expected = recon.mean().item() + (1 - cfg.alpha) * kl.mean().item()
    expected += (cfg.alpha + cfg.lam - 1) * mmd
    # The model computes the MMD in float32 (error ~1e-6), then weights it by up to 1000.
    tol = 1e-4 + 1e-5 * (cfg.alpha + cfg.lam - 1)
    assert out["loss"].item() == pytest.approx(expected, abs=tol)


def test_infovae_with_a_critic_uses_the_divergence_weight():
    model = tiny("infovae", alpha=0.25, lam=1.5, divergence="gan").train()
    x = batch()
    out = losses_at(model, x, 14)
    torch.manual_seed(14)
    with torch.no_grad():
        mu, logvar = model.encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        adv = F.softplus(-model.critic(z))
        expected = bce_cost(x, model.decoder(z)).mean()
        expected += 0.75 * kl_to_prior(mu, logvar).mean() + 0.75 * adv.mean()
    torch.testing.assert_close(out["adv"].detach(), adv)
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    # The critic's own loss carries the same weight alpha + lam - 1.
    torch.manual_seed(15)
    critic = model.critic_loss(z)
    torch.manual_seed(15)
    p = torch.randn(N, 4)
    naive = -(
        torch.log(torch.sigmoid(model.critic(p))) + torch.log(1 - torch.sigmoid(model.critic(z)))
    )
    assert critic.item() == pytest.approx(0.75 * naive.mean().item(), rel=1e-5)


@pytest.mark.parametrize("name", ["wae-gan", "aae"])
@pytest.mark.parametrize("log_prior", [False, True])
def test_adversarial_losses(name, log_prior):
    model = tiny(name, lam=2.5, prior_var=2.0, critic_log_prior=log_prior).train()
    x = batch()

    def logits(z: torch.Tensor) -> torch.Tensor:
        out = model.critic(z)
        if log_prior:  # + log N(z; 0, prior_var I)
            out = out + torch.distributions.Normal(0.0, math.sqrt(2.0)).log_prob(z).sum(1)
        return out

    out = losses_at(model, x, 16)
    torch.manual_seed(16)
    with torch.no_grad():
        h = model.encoder(x)
        if name == "aae":
            mu, logvar = h.chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        else:
            z = h
        recon = l2_cost(x, model.decoder(z))
        gen = -torch.log(torch.sigmoid(logits(z)))
    torch.testing.assert_close(out["adv"].detach(), gen)
    assert out["loss"].item() == pytest.approx((recon.mean() + 2.5 * gen.mean()).item(), rel=1e-6)

    torch.manual_seed(17)
    critic = model.critic_loss(z)
    torch.manual_seed(17)
    p = torch.randn(N, 4) * math.sqrt(2.0)
    with torch.no_grad():
        naive = -(torch.log(torch.sigmoid(logits(p))) + torch.log(1 - torch.sigmoid(logits(z))))
    assert critic.item() == pytest.approx(2.5 * naive.mean().item(), rel=1e-5)


def test_swae_loss_is_recon_plus_lambda_sliced_w2_squared():
    model = tiny("swae", lam=4.0, n_projections=7).train()
    x = batch()
    out = losses_at(model, x, 18)
    torch.manual_seed(18)
    with torch.no_grad():
        z = model.encoder(x)
        prior = model.sample_prior(N)
        # The penalty draws its projection directions right after the prior draws.
        theta = torch.randn(7, 4)
        theta = theta / theta.norm(dim=1, keepdim=True)
        pz = torch.sort(z @ theta.T, dim=0).values
        pp = torch.sort(prior @ theta.T, dim=0).values
        sw = ((pz - pp) ** 2).mean()
        recon = l2_cost(x, model.decoder(z))
    assert out["sw"].item() == pytest.approx(sw.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx((recon.mean() + 4.0 * sw).item(), rel=1e-6)


def test_ae_loss_is_the_reconstruction_only():
    model = tiny("ae").train()
    x = batch()
    out = losses_at(model, x, 19)
    with torch.no_grad():
        expected = l2_cost(x, model.decoder(model.encoder(x))).mean()
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_reconstruction_is_summed_over_pixels_not_averaged():
    small = tiny("wae-mmd", shape=(1, 8, 8)).eval()
    large = tiny("wae-mmd", shape=(1, 16, 16)).eval()
    for model, pixels in ((small, 64), (large, 256)):
        for p in model.decoder.parameters():
            torch.nn.init.zeros_(p)  # decoded image: 0.5 everywhere
        x = torch.zeros(2, *model.image_shape)
        recon = model.losses(x)["recon"]
        torch.testing.assert_close(recon.detach(), torch.full((2,), 0.25 * pixels))


def test_gaussian_posterior_samples_in_training_and_uses_the_mean_in_eval():
    model = tiny("vae")
    x = batch()
    model.eval()
    post = model.posterior(x)
    assert torch.equal(post.z, post.mu)
    assert torch.equal(model.encode(x), model.encode(x))
    model.train()
    torch.manual_seed(0)
    a = model.posterior(x).z
    torch.manual_seed(1)
    b = model.posterior(x).z
    assert not torch.equal(a, b)
    assert not torch.equal(model.posterior(x, sample=False).z, a)


def test_losses_accept_a_given_posterior():
    model = tiny("vae").train()
    x = batch()
    torch.manual_seed(0)
    post = model.posterior(x)
    out = model.losses(x, post)
    with torch.no_grad():
        expected = bce_cost(x, model.decoder(post.z))
    torch.testing.assert_close(out["recon"].detach(), expected)


def test_sample_prior_from_the_global_generator_has_the_prior_variance():
    model = tiny("wae-gan", prior_var=3.0)
    torch.manual_seed(0)
    draws = model.sample_prior(50_000)
    assert draws.shape == (50_000, 4)
    assert draws.var().item() == pytest.approx(3.0, rel=0.02)


# -- configuration errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,fields,needles",
    [
        ("wae-mmd", {"lam": -1.0}, ["model.lam", "-1.0"]),
        ("beta-vae", {"beta": -0.5}, ["model.beta", "-0.5"]),
        ("wae-mmd", {"latent_dim": 0}, ["model.latent_dim", "0"]),
        ("wae-mmd", {"kernel": "gaussian"}, ["model.kernel", "'gaussian'", "imq"]),
        ("infovae", {"alpha": 1.5}, ["model.alpha", "1.5"]),
        ("infovae", {"alpha": 0.0, "lam": 1e-3}, ["model.alpha + model.lam", "0.001", "lam=0.001"]),
        ("wae-mmd", {"net": "resnet"}, ["model.net", "'resnet'", "mlp"]),
        ("vae", {"encoder": "deterministic"}, ["model.encoder", "'deterministic'", "gaussian"]),
        ("wae-mmd", {"foo": 1}, ["model.foo"]),
        ("wae-mmd", {"recon": "l1"}, ["model.recon", "'l1'"]),
        ("wae-mmd", {"prior_var": 0.0}, ["model.prior_var", "0.0"]),
        ("wae-mmd", {"scales": ()}, ["model.scales"]),
        ("wae-mmd", {"latent_dim": "8"}, ["model.latent_dim", "'8'", "integer"]),
        ("wae-gaan", {}, ["model.name", "'wae-gaan'", "wae-gan"]),
    ],
)
def test_bad_config_raises_a_config_error_naming_field_and_value(name, fields, needles):
    with pytest.raises(waekit.ConfigError) as info:
        waekit.build_model(name, SHAPE, **{"net": "mlp", **fields})
    message = str(info.value)
    for needle in needles:
        assert needle in message, (needle, message)


def test_load_model_errors(tmp_path):
    with pytest.raises(waekit.CheckpointError, match="does not exist"):
        waekit.load_model(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(waekit.CheckpointError):
        waekit.load_model(garbage)
    bare = tmp_path / "bare.safetensors"
    save_tensors({"w": torch.zeros(2)}, bare)
    with pytest.raises(waekit.CheckpointError, match="no waekit model metadata"):
        waekit.load_model(bare)
    # Weights of one model under the metadata of another.
    small, other = tiny("wae-mmd"), tiny("wae-mmd", latent_dim=5)
    meta = {
        "config": other.config.__dict__ | {"scales": list(other.config.scales), "mlp_hidden": [32]},
        "image_shape": list(SHAPE),
    }
    mixed = tmp_path / "mixed.safetensors"
    save_tensors(small.state_dict(), mixed, {"waekit_model": json.dumps(meta)})
    with pytest.raises(waekit.CheckpointError, match="do not fit"):
        waekit.load_model(mixed)


def test_critic_logits_without_a_critic_names_the_model():
    model = waekit.build_model("wae-mmd", net="small", latent_dim=4)
    with pytest.raises(waekit.ConfigError, match="'wae-mmd' has no latent critic"):
        model.critic_logits(torch.zeros(3, 4))


def test_adam_with_loss_and_epsilon_scaled_alike_takes_the_same_steps():
    """Why the 1-D preset scales train.adam_eps with its summed cost (docs/math.md, section 7):
    Adam's update m / (sqrt(v) + eps) is unchanged when the loss and eps are both scaled by c."""
    c = 784.0
    torch.manual_seed(0)
    target = torch.randn(20)
    paths = []
    for scale in (1.0, c):
        w = torch.zeros(20, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([w], lr=1e-2, eps=1e-8 * scale)
        for _ in range(50):
            opt.zero_grad()
            (scale * ((w - target.double()) ** 2).mean()).backward()
            opt.step()
        paths.append(w.detach().clone())
    assert torch.allclose(paths[0], paths[1], rtol=0, atol=1e-12)


def test_public_entry_points_take_uint8_and_refuse_0_255_floats():
    torch.manual_seed(0)
    model = waekit.build_model("vae", image_shape=(1, 8, 8), latent_dim=2, net="mlp").eval()
    pixels = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    as_float = pixels.float() / 255
    # uint8 images are the same images as their /255 floats: identical codes and losses.
    assert torch.equal(model.encode(pixels), model.encode(as_float))
    assert torch.equal(model.reconstruct(pixels), model.reconstruct(as_float))
    torch.manual_seed(1)
    from_uint8 = model.losses(pixels)["loss"]
    torch.manual_seed(1)
    assert torch.equal(from_uint8, model.losses(as_float)["loss"])
    # 0..255 floats (a silently inflated loss before) and wrong shapes are one clear error.
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], these span \d+\.\.\d+: divide"):
        model.losses(pixels.float())
    with pytest.raises(ValueError, match=r"shape \(4, 1, 9, 9\) do not fit .* \(n, 1, 8, 8\)"):
        model.encode(torch.rand(4, 1, 9, 9))
    with pytest.raises(ValueError, match="uint8 .* or float"):
        model.encode(pixels.long())
