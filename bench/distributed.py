"""Throughput of multi-process training: images/s on 1 vs K processes, and bytes per step.

Trains WAE-MMD (the small conv net by default) on synthetic images with the real
:class:`waekit.train.Trainer`, once per process count, each under torchrun with gloo on
the CPU (NCCL when GPUs are present), and prints the time per step and images/s after a
warm-up. It also prints what a step communicates, from which multi-GPU scaling follows
(docs/distributed.md):

* the gradients DDP all-reduces: every auto-encoder parameter, 4 bytes each in fp32;
* the gathered codes: N x d floats (x3 with a Gaussian encoder: z, mu, logvar) gathered in
  the forward pass, and their gradient all-reduced in the backward pass.

    python bench/distributed.py                      # 1 and 2 processes, small conv, 28x28
    python bench/distributed.py --procs 1 2 4 --steps 50
    python bench/distributed.py --net conv --image-size 64 --channels 3 --latent-dim 64 \\
        --volume-only                                # bytes per step of the CelebA network

On a CPU the processes share the machine's cores, so each gets cores / K threads: the
figures show the overhead of the scheme, not the speed-up of K GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from waekit.data import ImageSet


def _images(n: int, channels: int, size: int) -> ImageSet:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(size / 4, 3 * size / 4, (2, n, 1, 1))
    img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (size / 3) ** 2)
    img = np.repeat(img[:, None], channels, axis=1)
    return ImageSet((img * 255).astype(np.uint8), None, "bench", "train", "generated")


def _config(args: argparse.Namespace):
    from waekit.config import config_from_dict

    return config_from_dict(
        {
            "model": {"name": args.model, "net": args.net, "latent_dim": args.latent_dim},
            "data": {"name": "npz"},
            "train": {
                "steps": 10**6,
                "batch_size": args.batch_size,
                "holdout": 0,
                "compile": "off",
                "precision": "fp32",
            },
            "distributed": {"global_batch_objective": not args.per_rank},
        }
    )


def volume(args: argparse.Namespace, procs: int) -> dict[str, float]:
    """Bytes one step communicates, per the formulas in the module docstring."""
    from waekit.models import model_from_config

    cfg = _config(args)
    model = model_from_config(cfg.model, (args.channels, args.image_size, args.image_size))
    params = sum(p.numel() for p in model.autoencoder_parameters())
    critic = sum(p.numel() for p in model.critic_parameters())
    width = args.latent_dim * (3 if cfg.model.gaussian else 1)
    codes = 0 if args.per_rank else args.batch_size * width * 4
    k = procs
    ring = 2 * (k - 1) / k  # a ring all-reduce sends and receives this many times the payload
    return {
        "params": params + critic,
        "grad_bytes": 4 * (params + critic),
        "code_bytes": codes,  # the gathered (N, width) tensor; its gradient is as large
        "sent_per_rank": ring * 4 * (params + critic) + (k - 1) / k * codes + ring * codes,
    }


def _worker(args: argparse.Namespace) -> None:
    """One process: warm up, time ``args.steps`` training steps, report from rank 0."""
    import torch.distributed as tdist

    from waekit import distributed as dist
    from waekit.train import Trainer

    torch.set_num_threads(args.threads)
    data = _images(max(4 * args.batch_size, 512), args.channels, args.image_size)
    out = Path(tempfile.mkdtemp(prefix="waekit-bench-"))
    world = dist.setup()
    trainer = Trainer(_config(args), out, data=data, progress=False, world=world)

    def run(steps: int) -> None:
        for _ in range(steps):
            trainer.train_step(trainer.batches.batch(trainer.step))
            trainer.step += 1

    def sync() -> None:
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        if world.size > 1:
            tdist.barrier()

    run(args.warmup)
    sync()
    t0 = time.perf_counter()
    run(args.steps)
    sync()
    dt = (time.perf_counter() - t0) / args.steps
    allreduce_s = 0.0
    if world.size > 1:  # the gradient all-reduce alone, on this machine
        buf = torch.zeros(int(volume(args, world.size)["params"]), device=trainer.device)
        for _ in range(3):
            tdist.all_reduce(buf)
        sync()
        t1 = time.perf_counter()
        for _ in range(10):
            tdist.all_reduce(buf)
        sync()
        allreduce_s = (time.perf_counter() - t1) / 10
    if world.is_main:
        print(
            json.dumps(
                {
                    "procs": world.size,
                    "threads": args.threads,
                    "s_per_step": dt,
                    "images_per_s": args.batch_size / dt,
                    "allreduce_s": allreduce_s,
                    "device": str(trainer.device),
                }
            ),
            flush=True,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: argparse.Namespace, procs: int) -> dict:
    threads = args.threads or max(1, (os.cpu_count() or 1) // procs)
    worker = [
        __file__,
        "--worker",
        f"--threads={threads}",
        f"--model={args.model}",
        f"--net={args.net}",
        f"--image-size={args.image_size}",
        f"--channels={args.channels}",
        f"--latent-dim={args.latent_dim}",
        f"--batch-size={args.batch_size}",
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        *(["--per-rank"] if args.per_rank else []),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = str(threads)
    if procs == 1:
        cmd = [sys.executable, *worker]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={procs}",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            *worker,
        ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--model", default="wae-mmd")
    p.add_argument("--net", default="small")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--latent-dim", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=100, help="the global batch")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="per process (default cores / K)")
    p.add_argument("--per-rank", action="store_true", help="global_batch_objective=false")
    p.add_argument("--volume-only", action="store_true", help="print bytes per step only")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args)
        return

    bad = [k for k in args.procs if args.batch_size % k]
    if bad and not args.volume_only:
        p.error(f"--batch-size {args.batch_size} does not split over {bad} processes")
    shape = f"{args.image_size}x{args.image_size}x{args.channels}"
    print(
        f"{args.model}, net={args.net}, {shape}, d={args.latent_dim}, global batch "
        f"{args.batch_size}, objective={'per-rank' if args.per_rank else 'global batch'}"
    )
    for k in args.procs:
        v = volume(args, k)
        print(
            f"K={k}: {v['params']:,} parameters; per step all-reduce "
            f"{v['grad_bytes'] / 1e6:.2f} MB of gradients, gather "
            f"{v['code_bytes'] / 1e3:.1f} kB of codes (+ as much gradient); "
            f"ring traffic per rank {v['sent_per_rank'] / 1e6:.2f} MB"
        )
    if args.volume_only:
        return
    print(
        f"{'procs':>5} {'threads':>7} {'ms/step':>8} {'images/s':>9} {'speed-up':>8} "
        f"{'all-reduce ms':>13}  device"
    )
    base = None
    for k in args.procs:
        r = _launch(args, k)
        base = base or r["images_per_s"]
        print(
            f"{r['procs']:>5} {r['threads']:>7} {1e3 * r['s_per_step']:>8.1f} "
            f"{r['images_per_s']:>9.0f} {r['images_per_s'] / base:>8.2f} "
            f"{1e3 * r['allreduce_s']:>13.2f}  {r['device']} ({os.cpu_count()} cores)"
        )


if __name__ == "__main__":
    main()
