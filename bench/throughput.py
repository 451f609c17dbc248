"""Training throughput, side by side: waekit's trainer, pythae's trainer, a plain PyTorch loop.

For each model (vae, wae-mmd, wae-gan, infovae) and net (small, conv = the WAE paper's
MNIST nets) the three contenders train the same networks (built from one resolved preset,
one seed) on the same real MNIST images at the same batch size:

- ``waekit``: waekit's own training step as ``waekit train`` runs it, at the config's
  ``train.precision`` (``auto`` by default: the fastest mode that is safe on the machine);
  ``waekit-fp32`` is the same trainer forced to fp32 (``--contenders`` adds it).
- ``pythae``: pythae 0.1.2's ``BaseTrainer.train_step`` (its data loader, its per-step
  ``loss.item()``) on waekit's nets wrapped as in ``bench/pythae_peer.py``. Only the
  objectives that mean the same in both libraries are run: vae, wae-mmd, infovae (MMD);
  pythae has no WAE-GAN (its Adversarial_AE is an AAE with its own discriminator).
- ``plain``: the yardstick, the loop a user writes by hand: eager fp32,
  ``model.losses(x)["loss"].backward()``, Adam, one critic step first for WAE-GAN.
  The ablation adds one speed-up at a time to it: ``plain+cl`` (channels_last weights and
  input), ``plain+bf16`` (bf16 autocast), ``plain+cl+bf16`` and ``plain+compile``
  (torch.compile of the loss), e.g. ``--contenders plain,plain+cl,plain+bf16,plain+cl+bf16``.

The contenders are interleaved: after a warm-up each times ``--steps`` steps in turn,
``--repeats`` times, and the median images/s is reported, so drift of the machine's load
hits all of them alike. The table gives the ratios waekit / pythae and waekit / plain.

    python bench/throughput.py --data-root ../shared/data --json bench/throughput.json
    python bench/throughput.py --device cuda --batch 100
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from waekit.config import RunConfig, load_config  # noqa: E402
from waekit.generate import to_float  # noqa: E402
from waekit.models import model_from_config  # noqa: E402

PRESETS = {
    "vae": "vae-mnist",
    "wae-mmd": "wae-mmd-mnist",
    "wae-gan": "wae-gan-mnist",
    "infovae": "infovae-mnist",
}
PYTHAE_MODELS = ("vae", "wae-mmd", "infovae")

Stepper = Callable[[int], None]  # runs n training steps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _config(model: str, net: str, args: argparse.Namespace, precision: str) -> RunConfig:
    total = args.warmup + args.steps * args.repeats
    return load_config(
        preset=PRESETS[model],
        overrides=[
            f"model.net={net}",
            f"data.root={args.data_root}",
            f"data.limit={args.batch * (total + 1)}",
            f"train.batch_size={args.batch}",
            f"train.steps={total + 1}",
            f"train.precision={precision}",
            f"train.device={args.device}",
            f"train.seed={args.seed}",
            "train.log_every=0",
            "train.holdout=0",
        ],
    )


def waekit_stepper(config: RunConfig, out: Path) -> Stepper:
    """waekit's trainer, stepped exactly as its training loop steps it."""
    from waekit.train import Trainer

    trainer = Trainer(config, out, progress=False)
    trainer.model.train()

    def run(n: int) -> None:
        for _ in range(n):
            trainer.train_step(trainer.batches.batch(trainer.step))
            trainer.step += 1

    return run


def plain_stepper(
    config: RunConfig, images: torch.Tensor, device: torch.device, extras: set[str] = frozenset()
) -> Stepper:
    """The hand-written eager fp32 loop (the yardstick), with the ``extras`` of the ablation:
    "cl" channels_last, "bf16" autocast, "compile" torch.compile of the loss."""
    torch.manual_seed(config.train.seed)
    fmt = torch.channels_last if "cl" in extras else torch.contiguous_format
    model = model_from_config(config.model, tuple(images.shape[1:]))
    model = model.to(device, memory_format=fmt).train()
    images = images.contiguous(memory_format=fmt)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled="bf16" in extras)
    losses = torch.compile(model.losses) if "compile" in extras else model.losses
    t = config.train
    opt = torch.optim.Adam(model.autoencoder_parameters(), lr=t.lr, betas=t.betas)
    critic_opt = (
        torch.optim.Adam(model.critic_parameters(), lr=t.critic_lr, betas=t.critic_betas)
        if model.critic is not None
        else None
    )
    batch = t.batch_size
    position = [0]

    def run(n: int) -> None:
        for _ in range(n):
            i = position[0] % (len(images) // batch)
            position[0] += 1
            x = images[i * batch : (i + 1) * batch]
            if critic_opt is not None:
                with torch.no_grad(), autocast:
                    z = model.encode(x, sample=True)
                critic_opt.zero_grad(set_to_none=True)
                with autocast:
                    critic_loss = model.critic_loss(z)
                critic_loss.backward()
                critic_opt.step()
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = losses(x)["loss"]
            loss.backward()
            opt.step()

    return run


def pythae_stepper(config: RunConfig, images: torch.Tensor, out: Path) -> Stepper:
    """pythae's BaseTrainer.train_step over an epoch of exactly ``n`` batches."""
    from pythae_peer import _pythae_model, _trainer

    torch.manual_seed(config.train.seed)
    model = model_from_config(config.model, tuple(images.shape[1:]))
    pmodel = _pythae_model(model, config)
    epochs = [0]
    trainers: dict[int, object] = {}

    def run(n: int) -> None:
        if n not in trainers:  # one epoch of pythae = n steps
            with contextlib.redirect_stdout(io.StringIO()):
                trainers[n], _ = _trainer(
                    pmodel, images[: n * config.train.batch_size], images[:2], config, out
                )
                trainers[n].prepare_training()  # what pythae's train() does before its epochs
        epochs[0] += 1
        with contextlib.redirect_stderr(io.StringIO()):  # its per-epoch progress bar
            trainers[n].train_step(epochs[0])

    return run


def measure(stepper: Stepper, steps: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    stepper(steps)
    _sync(device)
    return time.perf_counter() - t0


def bench_pair(model: str, net: str, args: argparse.Namespace, images: torch.Tensor) -> dict:
    device = torch.device(args.device)
    contenders: dict[str, Stepper] = {}
    tmp = Path(tempfile.mkdtemp(prefix="waekit-bench-"))
    for name in args.contenders:
        if name == "pythae" and model not in PYTHAE_MODELS:
            continue
        precision = args.precision if name == "waekit" else "fp32"
        config = _config(model, net, args, precision)
        if name.startswith("waekit"):
            with contextlib.redirect_stderr(io.StringIO()):
                contenders[name] = waekit_stepper(config, tmp / name)
        elif name.split("+")[0] == "plain":
            extras = set(name.split("+")[1:])
            contenders[name] = plain_stepper(config, images.to(device), device, extras)
        elif name == "pythae":
            contenders[name] = pythae_stepper(config, images, tmp / name)
    for stepper in contenders.values():  # warm-up: allocator, oneDNN primitives, compile
        stepper(args.warmup)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, stepper in contenders.items():
            times[name].append(measure(stepper, args.steps, device))
    rates = {name: args.steps * args.batch / statistics.median(ts) for name, ts in times.items()}
    row = {"model": model, "net": net, "images_per_s": rates, "seconds": times}
    if "waekit" in rates:
        for other in ("pythae", "plain", "waekit-fp32"):
            if other in rates:
                row[f"waekit/{other}"] = rates["waekit"] / rates[other]
    return row


def _mnist(root: str, n: int) -> torch.Tensor:
    from waekit.data import load_dataset

    data = load_dataset("mnist", split="train", root=root, download=False, limit=n)
    return to_float(data.images, torch.device("cpu"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="vae,wae-mmd,wae-gan,infovae")
    ap.add_argument("--nets", default="small,conv")
    ap.add_argument("--contenders", default="waekit,pythae,plain")
    ap.add_argument("--precision", default="auto", help="waekit's train.precision")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=0, help="steps per timed window (0: by net)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    args.contenders = [c for c in args.contenders.split(",") if c]
    logging.getLogger("pythae").setLevel(logging.ERROR)
    logging.disable(logging.INFO)

    rows = []
    header = f"{'model':8} {'net':6} " + " ".join(f"{c:>12}" for c in args.contenders)
    print(
        f"images/s, batch {args.batch}, {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(header + "  waekit/pythae  waekit/plain")
    for net in args.nets.split(","):
        steps = args.steps or (20 if net == "small" else 5)
        run_args = argparse.Namespace(**{**vars(args), "steps": steps})
        images = _mnist(args.data_root, args.batch * max(steps, args.warmup) + args.batch)
        for model in args.models.split(","):
            row = bench_pair(model, net, run_args, images)
            rows.append(row)
            rates = row["images_per_s"]
            cells = " ".join(
                f"{rates[c]:12.1f}" if c in rates else f"{'n/a':>12}" for c in args.contenders
            )
            ratios = "  ".join(
                f"{row[k]:13.2f}x" if k in row else f"{'n/a':>14}"
                for k in ("waekit/pythae", "waekit/plain")
            )
            print(f"{model:8} {net:6} {cells}  {ratios}", flush=True)
    if args.json:
        meta = {
            "machine": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "args": {k: v for k, v in vars(args).items() if k != "json"},
        }
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
