"""Where a training step's time goes: torch.profiler over three of waekit's own steps.

    PYTHONPATH=src python3 bench/profile_step.py --model wae-mmd --net conv

Prints the ops by self CPU time, in fp32 and at ``train.precision=auto``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import _config, waekit_stepper  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="wae-mmd")
    ap.add_argument("--net", default="conv")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--rows", type=int, default=12)
    args = ap.parse_args(argv)
    for precision in ("fp32", "auto"):
        run = argparse.Namespace(
            warmup=2,
            steps=args.steps,
            repeats=1,
            batch=100,
            data_root=args.data_root,
            device="cpu",
            seed=0,
        )
        config = _config(args.model, args.net, run, precision)
        with contextlib.redirect_stderr(io.StringIO()):
            step = waekit_stepper(config, Path(tempfile.mkdtemp()) / precision)
        step(2)  # warm-up: oneDNN primitives, allocator
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step(args.steps)
        print(f"== {args.model} {args.net}, train.precision={precision}, {args.steps} steps")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
