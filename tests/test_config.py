"""Configuration: per-model defaults, YAML round trips, dotted overrides, and teaching errors."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import waekit
from waekit.config import (
    ModelConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    make_model_config,
    parse_override,
    with_overrides,
)
from waekit.models import MODEL_NAMES, MODELS

# -- per-model defaults --------------------------------------------------------------------


def test_model_defaults_follow_the_papers():
    assert make_model_config("wae-mmd").lam == 10.0
    assert make_model_config("wae-gan").lam == 1.0
    assert make_model_config("aae").lam == 1.0
    assert make_model_config("beta-vae").beta == 4.0
    assert make_model_config("vae").beta == 1.0
    assert make_model_config("ae").lam == 0.0
    info = make_model_config("infovae")
    assert (info.alpha, info.lam) == (1.0, 1000.0)  # the MMD-VAE
    for name in ("vae", "beta-vae", "aae", "infovae"):
        assert make_model_config(name).encoder == "gaussian", name
    for name in ("ae", "wae-mmd", "wae-gan", "swae"):
        assert make_model_config(name).encoder == "deterministic", name
    for name in ("vae", "beta-vae", "infovae"):
        assert make_model_config(name).recon == "bernoulli", name
    wae = make_model_config("wae-mmd")
    assert wae.kernel == "imq" and wae.scales == waekit.WAE_SCALES == (
        0.1,
        0.2,
        0.5,
        1.0,
        2.0,
        5.0,
        10.0,
    )
    assert wae.latent_dim == 8 and wae.prior_var == 1.0 and wae.recon == "l2"


def test_user_fields_override_model_defaults():
    assert make_model_config("wae-gan", lam=3.0).lam == 3.0
    assert make_model_config("beta-vae", beta=0.5).beta == 0.5
    # A YAML section with only a name gets that model's defaults, not the dataclass's.
    cfg = config_from_dict({"model": {"name": "wae-gan"}})
    assert cfg.model.lam == 1.0


def test_adversarial_flag():
    assert make_model_config("wae-gan").adversarial and make_model_config("aae").adversarial
    assert make_model_config("infovae", divergence="gan").adversarial
    assert not make_model_config("infovae").adversarial
    assert not make_model_config("wae-mmd").adversarial


def test_train_defaults_follow_the_wae_paper():
    train = TrainConfig()
    assert train.batch_size == 100 and train.lr == 1e-3 and train.betas == (0.5, 0.999)
    assert train.critic_lr == 5e-4
    assert train.lr_milestones == (30.0, 50.0) and train.lr_factors == (0.5, 0.2)


def test_configs_are_frozen():
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.lam = 3.0  # type: ignore[misc]


# -- YAML round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_yaml_round_trip_for_every_model(name):
    scales = {"scales": (0.5, 2.0)} if "scales" in MODELS[name].fields else {}
    model = make_model_config(name, latent_dim=5, prior_var=2.0, **scales)
    cfg = RunConfig(model=model, train=TrainConfig(lr=3e-4, steps=7, grad_clip=1.5))
    back = config_from_dict(yaml.safe_load(cfg.to_yaml()))
    assert back == cfg
    assert isinstance(back.model.scales, tuple) and isinstance(back.train.betas, tuple)


def test_yaml_round_trip_of_the_defaults_and_to_dict():
    cfg = RunConfig()
    assert config_from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    assert config_from_dict(cfg.to_dict()) == cfg
    plain = cfg.to_dict()
    assert set(plain) == {"model", "data", "train", "distributed"}
    assert plain["model"]["scales"] == list(waekit.WAE_SCALES)  # plain lists, YAML-safe


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(["ae", "wae-mmd", "wae-gan", "swae"]),
    latent_dim=st.integers(1, 128),
    lam=st.floats(0, 1e4, allow_nan=False),
    prior_var=st.floats(1e-3, 1e3, allow_nan=False),
    lr=st.floats(1e-8, 1.0, allow_nan=False),
    scales=st.lists(st.floats(1e-3, 1e3, allow_nan=False), min_size=1, max_size=7),
    kernel=st.sampled_from(["imq", "rbf"]),
)
def test_yaml_round_trip_property(name, latent_dim, lam, prior_var, lr, scales, kernel):
    chosen = {"lam": lam, "scales": tuple(scales), "kernel": kernel}
    read = {k: v for k, v in chosen.items() if k in MODELS[name].fields}
    model = make_model_config(name, latent_dim=latent_dim, prior_var=prior_var, **read)
    cfg = RunConfig(model=model, train=TrainConfig(lr=lr))
    assert config_from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


def test_config_file_round_trip(tmp_path):
    cfg = with_overrides(RunConfig(), ["model.name=wae-gan", "model.lam=2.0", "data.limit=50"])
    path = tmp_path / "run.yaml"
    path.write_text(cfg.to_yaml())
    assert waekit.load_config(config_file=path) == cfg
    assert waekit.load_config(config_file=path, overrides=["train.seed=3"]).train.seed == 3


def test_exponent_numbers_in_yaml_are_numbers(tmp_path):
    # PyYAML reads "1e-4" (no dot) as a string; a config file must still accept it.
    assert yaml.safe_load("lr: 1e-4")["lr"] == "1e-4"
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  name: infovae\n  lam: 1E+3\ntrain:\n  lr: 1e-4\n  steps: 2e3\n")
    cfg = waekit.load_config(config_file=path)
    assert cfg.train.lr == 1e-4 and cfg.model.lam == 1000.0 and cfg.train.steps == 2000
    assert with_overrides(cfg, ["train.critic_lr=5e-5"]).train.critic_lr == 5e-5
    with pytest.raises(waekit.ConfigError, match="train.steps"):
        with_overrides(cfg, ["train.steps=2.5e0"])


def test_every_preset_loads():
    names = waekit.preset_names()
    for name in names:
        cfg = waekit.load_config(preset=name)
        assert isinstance(cfg, RunConfig)
        assert config_from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


# -- dotted overrides ----------------------------------------------------------------------


def test_parse_override_reads_yaml_values():
    assert parse_override("model.lam=5") == (["model", "lam"], 5)
    assert parse_override("model.scales=[1, 2.5]") == (["model", "scales"], [1, 2.5])
    assert parse_override("data.root=null") == (["data", "root"], None)
    assert parse_override("data.path=") == (["data", "path"], None)
    assert parse_override("model.kernel=rbf") == (["model", "kernel"], "rbf")


def test_apply_overrides_merges_into_sections_without_mutating():
    raw = {"model": {"name": "wae-mmd", "lam": 10.0}}
    merged = apply_overrides(raw, ["model.lam=3", "train.batch_size=64", "model.scales=[1]"])
    assert raw == {"model": {"name": "wae-mmd", "lam": 10.0}}
    assert merged == {
        "model": {"name": "wae-mmd", "lam": 3, "scales": [1]},
        "train": {"batch_size": 64},
    }
    cfg = config_from_dict(merged)
    assert cfg.model.lam == 3.0 and isinstance(cfg.model.lam, float)
    assert cfg.model.scales == (1.0,) and cfg.train.batch_size == 64


def test_with_overrides_changes_only_the_named_fields():
    base = RunConfig()
    cfg = with_overrides(
        base,
        [
            "model.kernel=rbf",
            "train.betas=[0.9, 0.99]",
            "data.image_size=32",
            "distributed.sync_batch_norm=true",
        ],
    )
    assert cfg.model.kernel == "rbf" and cfg.train.betas == (0.9, 0.99)
    assert cfg.data.image_size == 32 and cfg.distributed.sync_batch_norm is True
    assert (
        dataclasses.replace(
            cfg,
            model=dataclasses.replace(cfg.model, kernel="imq"),
            train=dataclasses.replace(cfg.train, betas=(0.5, 0.999)),
            data=dataclasses.replace(cfg.data, image_size=None),
            distributed=dataclasses.replace(cfg.distributed, sync_batch_norm=False),
        )
        == base
    )
    assert with_overrides(base, []) == base


def test_changing_the_model_name_takes_the_new_models_defaults():
    wae = waekit.load_config(preset="wae-mmd-mnist", overrides=["model.latent_dim=16"])
    vae = with_overrides(wae, ["model.name=vae"])
    # The same as naming the new model from the start, with the departures carried over:
    # the preset's net and the changed latent_dim; the VAE's own encoder, cost and beta.
    assert vae.model == waekit.make_model_config(
        "vae", net="conv", latent_dim=16, recon_scale=0.05, scales=wae.model.scales
    )
    assert vae.model.encoder == "gaussian" and vae.model.recon == "bernoulli"
    assert wae.model.encoder == "deterministic" and wae.model.recon == "l2"
    # An override given together with the new name wins over both sets of defaults.
    assert with_overrides(wae, ["model.name=vae", "model.recon=l2"]).model.recon == "l2"
    # Back to the original model: the original config again.
    assert with_overrides(vae, ["model.name=wae-mmd"]).model == wae.model


@pytest.mark.parametrize(
    "override,needles",
    [
        ("model.foo=1", ["model.foo"]),
        ("optim.lr=1", ["optim"]),
        ("lam=1", ["section.key"]),
        ("model.lam", ["section.key=value"]),
        ("model.lam.x=1", ["model.lam.x"]),
        ("model.lam=[1, 2", ["not valid YAML"]),
        ("model.lam=-2", ["model.lam", "-2"]),
        ("model.latent_dim=eight", ["model.latent_dim", "'eight'"]),
    ],
)
def test_bad_overrides_raise_naming_the_key(override, needles):
    with pytest.raises(waekit.ConfigError) as info:
        with_overrides(RunConfig(), [override])
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


# -- unknown keys and wrong types ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw,needles",
    [
        ({"model": {"lamda": 1.0}}, ["model.lamda", "lam"]),  # lists the valid keys
        ({"train": {"learning_rate": 1.0}}, ["train.learning_rate"]),
        ({"data": {"nmae": "mnist"}}, ["data.nmae"]),
        ({"optimizer": {}}, ["optimizer"]),
        ({"model": {"latent_dim": "8"}}, ["model.latent_dim", "'8'", "integer"]),
        ({"model": {"latent_dim": 8.5}}, ["model.latent_dim", "8.5"]),
        ({"model": {"latent_dim": True}}, ["model.latent_dim", "True"]),
        ({"model": {"lam": "ten"}}, ["model.lam", "'ten'", "number"]),
        ({"model": {"lam": True}}, ["model.lam", "True"]),
        ({"model": {"batch_norm": "yes"}}, ["model.batch_norm", "'yes'"]),
        ({"model": {"kernel": 3}}, ["model.kernel", "3", "choose one of ('imq', 'rbf')"]),
        ({"model": {"scales": ["a"]}}, ["model.scales", "'a'"]),
        ({"train": {"betas": [0.5]}}, ["train.betas", "length"]),
        ({"train": {"batch_size": 1}}, ["train.batch_size", "1"]),
        ({"train": {"precision": "fp8"}}, ["train.precision", "'fp8'"]),
        ({"model": 5}, ["model", "mapping"]),
        ({"model": {"name": "wae"}}, ["model.name", "'wae'"]),
    ],
)
def test_bad_config_raises_naming_the_key(raw, needles):
    with pytest.raises(waekit.ConfigError) as info:
        config_from_dict(raw)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_numbers_are_coerced_to_the_field_type():
    cfg = config_from_dict({"model": {"latent_dim": 16.0, "lam": 5, "scales": 2}})
    assert cfg.model.latent_dim == 16 and isinstance(cfg.model.latent_dim, int)
    assert cfg.model.lam == 5.0 and isinstance(cfg.model.lam, float)
    assert cfg.model.scales == (2.0,)


def test_config_error_is_a_value_error_and_a_waekit_error():
    with pytest.raises(ValueError):
        make_model_config("wae-mmd", lam=-1.0)
    assert issubclass(waekit.ConfigError, waekit.WaekitError)


def test_direct_construction_validates_too():
    with pytest.raises(waekit.ConfigError, match="model.kernel='gaussian'"):
        ModelConfig(kernel="gaussian")
    with pytest.raises(waekit.ConfigError, match="vae needs a gaussian encoder"):
        ModelConfig(name="vae")


def test_infovae_weight_constraints():
    # The peer library's defaults (alpha = 0, lambda = 1e-3) make the MMD weight negative.
    with pytest.raises(waekit.ConfigError) as info:
        make_model_config("infovae", alpha=0.0, lam=1e-3)
    message = str(info.value)
    assert "alpha + lam >= 1" in message and "alpha=0.0" in message and "lam=0.001" in message
    with pytest.raises(waekit.ConfigError, match=r"model.alpha=1.5"):
        make_model_config("infovae", alpha=1.5)
    # The boundary alpha + lam = 1 is allowed (no divergence term), as is a negative alpha.
    make_model_config("infovae", alpha=0.0, lam=1.0)
    make_model_config("infovae", alpha=-1.0, lam=3.0)


def test_load_config_errors(tmp_path):
    with pytest.raises(waekit.ConfigError, match="does not exist"):
        waekit.load_config(config_file=tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(waekit.ConfigError, match="not valid YAML"):
        waekit.load_config(config_file=bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(waekit.ConfigError, match="mapping"):
        waekit.load_config(config_file=listing)
    with pytest.raises(waekit.ConfigError, match="unknown preset 'nope'"):
        waekit.load_config(preset="nope")
    with pytest.raises(waekit.ConfigError, match="not both"):
        waekit.load_config(preset="quickstart", config_file=bad)
    flat = tmp_path / "flat.yaml"
    flat.write_text("model: 5\n")
    for overrides in ([], ["model.lam=1"]):
        with pytest.raises(waekit.ConfigError, match="section 'model' must be a mapping"):
            waekit.load_config(config_file=flat, overrides=overrides)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert waekit.load_config(config_file=empty) == config_from_dict({})


# -- one resolution path -------------------------------------------------------------------


def test_resolve_config_picks_one_base_then_applies_overrides(tmp_path):
    from waekit.config import resolve_config

    quick = waekit.load_config(preset="quickstart")
    assert resolve_config() == quick
    assert resolve_config(preset="wae-gan-mnist") == waekit.load_config(preset="wae-gan-mnist")
    saved = tmp_path / "config.yaml"
    saved.write_text(with_overrides(quick, ["train.seed=7", "model.latent_dim=3"]).to_yaml())
    # A run's saved config is the base when no preset or file is given, and only then.
    resumed = resolve_config(saved=saved, overrides=["train.steps=900"])
    assert (resumed.train.seed, resumed.model.latent_dim, resumed.train.steps) == (7, 3, 900)
    assert resolve_config(preset="quickstart", saved=saved) == quick
    assert resolve_config(saved=tmp_path / "absent.yaml") == quick
    # A RunConfig object goes through the same override path as a file or a preset.
    assert resolve_config(config=quick, overrides=["model.name=vae"]) == with_overrides(
        quick, ["model.name=vae"]
    )
    assert resolve_config(config_file=saved, overrides=["model.name=vae"]).model.latent_dim == 3
    with pytest.raises(waekit.ConfigError, match="give --preset or --config, not both"):
        resolve_config(preset="quickstart", config_file=saved)
    with pytest.raises(waekit.ConfigError, match="not both"):
        resolve_config(config=quick, preset="quickstart")


def test_a_preset_switched_to_another_model_starts_from_that_models_defaults():
    """--preset wae-gan-mnist --set model.name=vae: the preset's recon (l2) is wae-gan's
    default, so it does not carry over and the VAE keeps its Bernoulli decoder; the
    user's own --set (net) is kept."""
    cfg = waekit.load_config(
        preset="wae-gan-mnist", overrides=["model.name=vae", "model.net=small"]
    )
    assert cfg.model.name == "vae" and cfg.model.net == "small"
    assert cfg.model.recon == "bernoulli" and cfg.model.beta == 1.0


# -- the model table: fields a model does not read -------------------------------------------


def test_a_field_the_model_does_not_read_is_refused_with_a_runnable_fix():
    import re

    overrides = ["model.name=wae-mmd", "model.beta=4"]
    with pytest.raises(waekit.ConfigError) as info:
        waekit.load_config(preset="quickstart", overrides=overrides)
    message = str(info.value)
    assert "model.beta=4 is not read by model 'wae-mmd'" in message and "\n" not in message
    # The printed fix works as printed: the model it names reads beta.
    fix = re.search(r"--set (model\.name=[\w-]+);", message).group(1)
    cfg = waekit.load_config(preset="quickstart", overrides=[*overrides, fix])
    assert cfg.model.beta == 4.0 and "beta" in MODELS[cfg.model.name].fields
    with pytest.raises(waekit.ConfigError, match="model.lam=123 is not read by model 'vae'"):
        waekit.build_model("vae", lam=123)
    # A field at the model's own default is not "set": complete saved configs still load.
    assert make_model_config("vae", lam=10.0, kernel="imq").lam == 10.0
    assert make_model_config("ae", lam=0.0).lam == 0.0
    for name in MODEL_NAMES:
        full = dataclasses.asdict(make_model_config(name))
        assert make_model_config(full.pop("name"), **full) == make_model_config(name)


def test_the_model_table_holds_each_models_defaults_encoder_and_critic():
    for name, spec in MODELS.items():
        cfg = make_model_config(name)
        assert cfg.encoder == spec.encoders[0]
        for key, value in spec.defaults.items():
            assert getattr(cfg, key) == value, (name, key)
        assert set(spec.defaults) <= spec.fields | {"lam"}  # ae keeps lam = 0 for old configs
        reads_critic = "critic_log_prior" in spec.fields
        assert cfg.adversarial == (
            reads_critic and cfg.divergence == "gan" or name in ("wae-gan", "aae")
        )
    assert {n for n, s in MODELS.items() if s.encoders == ("gaussian",)} == {
        "vae",
        "beta-vae",
        "aae",
        "infovae",
    }


def test_switching_model_keeps_only_the_fields_the_new_model_reads():
    celeba = waekit.load_config(preset="wae-gan-celeba")
    assert celeba.model.critic_log_prior is True
    mmd = with_overrides(celeba, ["model.name=wae-mmd"])
    assert mmd.model.lam == 10.0 and mmd.model.critic_log_prior is False  # not carried
    assert mmd.model.latent_dim == 64 and mmd.model.prior_var == 2.0  # shared departures kept
    assert mmd.model.recon_scale == 0.2 and mmd.model.critic_hidden == 1024
    with pytest.raises(waekit.ConfigError, match="critic_log_prior=True is not read"):
        with_overrides(celeba, ["model.name=wae-mmd", "model.critic_log_prior=true"])


# -- choices, numbers, and bounded messages ----------------------------------------------------


@pytest.mark.parametrize(
    "text,expected", [("off", "off"), ("on", "on"), ("false", "off"), ("true", "on")]
)
def test_compile_switch_read_by_yaml_as_a_boolean(tmp_path, text, expected):
    path = tmp_path / "run.yaml"
    path.write_text(f"train:\n  compile: {text}\n")
    assert waekit.load_config(config_file=path).train.compile == expected
    assert with_overrides(RunConfig(), [f"train.compile={text}"]).train.compile == expected
    with pytest.raises(waekit.ConfigError, match=r"train.compile='sometimes' is invalid: choose"):
        with_overrides(RunConfig(), ["train.compile=sometimes"])
    with pytest.raises(waekit.ConfigError, match=r"model.recon=True is invalid: choose one of"):
        with_overrides(RunConfig(), ["model.recon=on"])  # only on/off switches read booleans


def test_choices_are_checked_on_direct_construction_too():
    with pytest.raises(waekit.ConfigError, match=r"model.net='big' is invalid: choose one of"):
        ModelConfig(net="big")
    with pytest.raises(waekit.ConfigError, match=r"train.schedule='step' is invalid"):
        TrainConfig(schedule="step")
    with pytest.raises(waekit.ConfigError, match=r"train.precision='fp8' is invalid"):
        TrainConfig(precision="fp8")


@pytest.mark.parametrize(
    "override,needle",
    [
        ("train.seed=1e23", "train.seed='1e23'"),
        ("train.seed=4294967296", "from 0 to 2**32 - 1"),
        ("train.seed=-1", "train.seed=-1"),
        ("train.epochs=.inf", "train.epochs=inf"),
        ("train.epochs=1e300", "train.epochs=1e+300"),
        ("train.lr=.nan", "train.lr=nan"),
        ("model.lam=.inf", "model.lam=inf"),
        ("model.latent_dim=1000000000", "model.latent_dim=1000000000"),
        ("model.latent_dim=1e30", "model.latent_dim="),
        ("data.image_size=100000000", "data.image_size=100000000"),
        ("model.critic_hidden=10000000", "model.critic_hidden=10000000"),
        ("train.steps=1e40", "train.steps="),
    ],
)
def test_overflowing_numbers_are_refused_in_one_line(override, needle):
    with pytest.raises(waekit.ConfigError) as info:
        with_overrides(RunConfig(), [override])
    message = str(info.value)
    assert needle in message and "\n" not in message and len(message) < 200, message


def test_a_yaml_alias_bomb_never_expands_into_a_message(tmp_path):
    # Nine levels of nine aliases: 9**9 (387 million) strings if anything walked it all.
    levels = ['&l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb = "[" + ", ".join(levels) + "]"
    for section, key in [
        ("model", "name"),
        ("model", "scales"),
        ("model", "lam"),
        ("train", "lr"),
        ("train", "compile"),
        ("data", "name"),
        ("train", "betas"),
    ]:
        path = tmp_path / "bomb.yaml"
        path.write_text(f"{section}:\n  {key}: {bomb}\n")
        with pytest.raises(waekit.ConfigError) as info:
            waekit.load_config(config_file=path)
        message = str(info.value)
        assert f"{section}.{key}=" in message and len(message) < 300, message
    path.write_text(f"model: {bomb}\n")
    with pytest.raises(waekit.ConfigError, match="must be a mapping") as info:
        waekit.load_config(config_file=path)
    assert len(str(info.value)) < 300


# -- the presets at the official code's balance (docs/math.md, section 7) ----------------------

#: The WAE code multiplies the summed squared L2 cost by 0.05 ('l2sq'); its CelebA pixels are
#: in [-1, 1], where a squared error is 4 times the one on waekit's [0, 1] pixels.
OFFICIAL_L2_SCALE = 0.05
PIXEL_RANGE_FACTOR = {"mnist": 1.0, "celeba": (1 - (-1)) ** 2 / (1 - 0) ** 2}


@pytest.mark.parametrize(
    "preset,lam,prior_var,log_prior",
    [
        ("wae-mmd-mnist", 10.0, 1.0, False),
        ("wae-gan-mnist", 1.0, 1.0, False),
        ("wae-mmd-celeba", 100.0, 2.0, False),
        ("wae-gan-celeba", 1.0, 2.0, True),
    ],
)
def test_paper_presets_weigh_the_cost_as_the_official_code(preset, lam, prior_var, log_prior):
    cfg = waekit.load_config(preset=preset).model
    data = waekit.load_config(preset=preset).data.name
    assert cfg.recon == "l2"
    assert cfg.recon_scale == pytest.approx(OFFICIAL_L2_SCALE * PIXEL_RANGE_FACTOR[data])
    assert (cfg.lam, cfg.prior_var, cfg.critic_log_prior) == (lam, prior_var, log_prior)
    assert {"mnist": 0.05, "celeba": 0.2}[data] == pytest.approx(cfg.recon_scale)


def test_vae_celeba_is_a_calibrated_gaussian_decoder():
    """recon_scale = 1 / (2 s0^2) with s0^2 = 0.01, the per-pixel squared error of such a VAE."""
    cfg = waekit.load_config(preset="vae-celeba").model
    assert cfg.recon == "l2" and cfg.recon_scale == pytest.approx(1 / (2 * 0.01))


def test_one_dimensional_preset_is_seed_004_rescaled_to_the_summed_cost():
    """Seed 004: mean squared error over 784 pixels + 0.001 * adversarial term, Adam(8e-5,
    eps 1e-8). Summing over pixels multiplies both players' losses by 784; lambda and Adam's
    epsilon scale with it, so every update is the seed's."""
    cfg = waekit.load_config(preset="wae-gan-mnist-1d")
    pixels = 28 * 28
    assert cfg.model.recon_scale == 1.0 and cfg.model.lam == pytest.approx(1e-3 * pixels)
    assert cfg.train.adam_eps == pytest.approx(1e-8 * pixels)
    assert (cfg.train.lr, cfg.train.critic_lr, cfg.train.batch_size) == (8e-5, 8e-5, 218)
    assert cfg.train.betas == cfg.train.critic_betas == (0.9, 0.999)  # TensorFlow's defaults
    assert cfg.model.prior_var == 4.0 and cfg.model.latent_dim == 1  # N(0, 2^2)
    assert cfg.model.batch_norm is True and cfg.model.decoder_batch_norm is False
