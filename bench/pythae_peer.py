"""Train pythae's VAE or WAE_MMD on the same work as a waekit preset, into a waekit run folder.

The networks are waekit's own (built from the same resolved config, the same seed), handed
to pythae as its encoder and decoder; the data are the same images, the batch, epochs,
learning rate, Adam betas and the WAE learning-rate schedule are the preset's. pythae's
``BaseTrainer`` (what its ``TrainingPipeline`` runs) does the training, with the first
``train.holdout`` test images as its evaluation set, as waekit's trainer uses them. The
weights after the last epoch are written as ``model.safetensors`` next to the resolved
``config.yaml``, so ``waekit evaluate`` and ``waekit report`` measure both libraries
with one evaluator:

    pip install pythae==0.1.2
    python bench/pythae_peer.py --preset wae-mmd-mnist --set data.root=../shared/data \\
        --set train.epochs=10 --out runs/pythae-wae-mmd-mnist
    waekit evaluate runs/pythae-wae-mmd-mnist -n 500

Only the objectives that mean the same thing in both libraries are offered: ``vae``
(Bernoulli decoder: pythae's ``reconstruction_loss="bce"``), ``wae-mmd`` (squared L2
cost summed over pixels, IMQ kernel summed over the preset's scales with
C = 2 d prior_var s: pythae's ``kernel_bandwidth=1`` with a unit-variance prior) and
``infovae`` with the MMD divergence (pythae's ``INFOVAE_MMD`` with ``alpha`` and
``lbd`` = waekit's ``alpha`` and ``lam``: the same weights 1 - alpha and alpha + lam - 1).
``peer.json`` in the run folder records pythae's version, the wall-clock time of
``trainer.train()`` and the images per second.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from waekit.config import RunConfig, load_config
from waekit.generate import to_float
from waekit.io import atomic_write_text
from waekit.models import LatentAutoEncoder, model_from_config, save_model
from waekit.run import CONFIG_FILE, METRICS_FILE, MODEL_FILE
from waekit.train import load_training_data, lr_factor

SUPPORTED = ("vae", "wae-mmd", "infovae")


def _pythae_model(model: LatentAutoEncoder, config: RunConfig):
    """pythae's VAE or WAE_MMD around ``model``'s encoder and decoder (shared parameters)."""
    from pythae.models import (
        INFOVAE_MMD,
        VAE,
        WAE_MMD,
        INFOVAE_MMD_Config,
        VAEConfig,
        WAE_MMD_Config,
    )
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    m = config.model
    gaussian = m.name in ("vae", "infovae")

    class Encoder(BaseEncoder):
        def __init__(self, net: nn.Module):
            BaseEncoder.__init__(self)
            self.net = net

        def forward(self, x):
            h = self.net(x)
            if gaussian:
                mu, logvar = h.chunk(2, dim=1)
                return ModelOutput(embedding=mu, log_covariance=logvar)
            return ModelOutput(embedding=h)

    class Decoder(BaseDecoder):
        def __init__(self, net: nn.Module):
            BaseDecoder.__init__(self)
            self.net = net

        def forward(self, z):  # pythae's losses take images in [0, 1]
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    common = dict(input_dim=tuple(model.image_shape), latent_dim=m.latent_dim)
    if m.name == "infovae":
        if (
            m.recon != "bernoulli"
            or m.prior_var != 1.0
            or m.kernel != "imq"
            or m.divergence != "mmd"
        ):
            raise SystemExit(
                "pythae's INFOVAE_MMD is compared with recon=bernoulli, imq, prior_var=1"
            )
        pconf = INFOVAE_MMD_Config(
            **common,
            reconstruction_loss="bce",
            kernel_choice="imq",
            alpha=m.alpha,
            lbd=m.lam,
            kernel_bandwidth=1.0,
            scales=list(m.scales),
        )
        cls = INFOVAE_MMD
    elif gaussian:
        if m.recon != "bernoulli" or m.beta != 1.0 or m.prior_var != 1.0:
            raise SystemExit("pythae's VAE is compared with recon=bernoulli, beta=1, prior_var=1")
        pconf = VAEConfig(**common, reconstruction_loss="bce")
        cls = VAE
    else:
        if m.recon != "l2" or m.prior_var != 1.0 or m.kernel != "imq":
            raise SystemExit("pythae's WAE_MMD is compared with recon=l2, imq, prior_var=1")
        pconf = WAE_MMD_Config(
            **common,
            kernel_choice="imq",
            reg_weight=m.lam,
            kernel_bandwidth=1.0,
            scales=list(m.scales),
            reconstruction_loss_scale=m.recon_scale,
        )
        cls = WAE_MMD
    return cls(pconf, encoder=Encoder(model.encoder), decoder=Decoder(model.decoder))


def _trainer(pmodel, train_x: torch.Tensor, eval_x: torch.Tensor, config: RunConfig, out: Path):
    from pythae.data.datasets import BaseDataset
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    t = config.train
    steps_per_epoch = math.ceil(len(train_x) / t.batch_size)
    records: list[dict] = []

    class Log(TrainingCallback):
        def on_log(self, training_config, logs, **kwargs):
            epoch = kwargs["global_step"]
            records.append(
                {
                    "kind": "train",
                    "step": epoch * steps_per_epoch,
                    "epoch": epoch,
                    "loss": logs["train_epoch_loss"],
                }
            )
            if "eval_epoch_loss" in logs:
                records.append(
                    {
                        "kind": "eval",
                        "step": epoch * steps_per_epoch,
                        "holdout_loss": logs["eval_epoch_loss"],
                    }
                )

    class WaeScheduleTrainer(BaseTrainer):
        """pythae steps its scheduler once per epoch; the preset's schedule is per epoch too."""

        def set_scheduler(self):
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer,
                lambda epoch: lr_factor(t, epoch * steps_per_epoch, steps_per_epoch, 0),
            )

    tconf = BaseTrainerConfig(
        output_dir=str(out / "pythae"),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        num_epochs=int(round(t.epochs)),
        learning_rate=t.lr,
        optimizer_cls="Adam",
        optimizer_params={"betas": tuple(t.betas)},
        seed=t.seed,
        no_cuda=not torch.cuda.is_available(),
    )
    trainer = WaeScheduleTrainer(
        model=pmodel,
        train_dataset=BaseDataset(train_x, torch.zeros(len(train_x))),
        eval_dataset=BaseDataset(eval_x, torch.zeros(len(eval_x))),
        training_config=tconf,
        callbacks=[Log()],
    )
    return trainer, records


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)

    config = load_config(preset=args.preset, overrides=args.overrides)
    if config.model.name not in SUPPORTED:
        raise SystemExit(f"model.name={config.model.name!r}: pythae is compared on {SUPPORTED}")
    if config.train.steps is not None or config.train.epochs != round(config.train.epochs):
        raise SystemExit("pythae trains whole epochs: give train.epochs as an integer, no steps")

    train_set, test_set = load_training_data(config.data)  # what `waekit train` reads
    if test_set is None:
        raise SystemExit(
            f"data.test_split={config.data.test_split!r} could not be read: "
            "pythae's evaluation set is the first test images"
        )
    cpu = torch.device("cpu")
    train_x = to_float(train_set.images, cpu)
    eval_x = to_float(test_set.images[: max(config.train.holdout, config.train.batch_size)], cpu)

    torch.manual_seed(config.train.seed)  # the same initial weights as `waekit train`
    model = model_from_config(config.model, train_set.image_shape)
    pmodel = _pythae_model(model, config)
    args.out.mkdir(parents=True, exist_ok=True)
    trainer, records = _trainer(pmodel, train_x, eval_x, config, args.out)

    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0

    model = model.cpu().eval()  # trained in place: the pythae modules share its parameters
    atomic_write_text(args.out / CONFIG_FILE, config.to_yaml())
    save_model(model, args.out / MODEL_FILE)
    atomic_write_text(args.out / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in records))
    images = len(train_x) * int(round(config.train.epochs))
    peer = {
        "library": "pythae",
        "version": importlib.metadata.version("pythae"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "wall_s": wall,
        "images": images,
        "images_per_s": images / wall,
        "weights": "after the last epoch",
    }
    atomic_write_text(args.out / "peer.json", json.dumps(peer, indent=1) + "\n")
    print(json.dumps(peer))


if __name__ == "__main__":
    main()
