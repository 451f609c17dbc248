"""FID feature speed: images/s of each way to run the FID Inception network, side by side.

Candidates (all fp32, the same weights):

- ``torchscript``: the shipped TorchScript graph as loaded (the reference);
- ``torchscript-cl``: the same with channels_last input;
- ``frozen-ofi``: ``torch.jit.freeze`` + ``torch.jit.optimize_for_inference`` (oneDNN);
- ``folded``: the eager re-expression with batch norm folded (waekit.evaluate.inception);
- ``folded-cl``: the same in channels_last (what ``InceptionFeatures`` uses);
- ``folded-cl-frozen``: folded-cl traced and frozen with optimize_for_inference;
- ``openvino``: the folded graph compiled by OpenVINO's CPU runtime, fp32 (the default
  back end of ``InceptionFeatures`` on a CPU where openvino is installed).

The machine may be shared, so every candidate is timed once per round, in turn, for
``--rounds`` rounds in one process; the table gives the median images/s and the median of
the per-round ratios to the reference (ratios within a round see the same load), by wall
clock and by CPU time of the process (with ``--threads 1`` the CPU time is the work done,
whatever else runs on the machine). Each
candidate's features are compared with the reference's: max |f - f_ref| / max |f_ref|.
The input is real MNIST test digits through waekit's FID input path (TF1 bilinear resize to
299, grey to RGB, x / 128 - 1). ``--evaluate RUN_DIR`` also times a whole
``waekit evaluate RUN_DIR -n N``.

    PYTHONPATH=src python3 bench/fid_speed.py --rounds 3 --batch 50 --json fid_speed.json
    PYTHONPATH=src python3 bench/fid_speed.py --device cuda
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from waekit.evaluate.fid import InceptionFeatures, inception_weights_path
from waekit.evaluate.inception import fold_inception, openvino_inception

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def mnist(n: int) -> np.ndarray:
    path = SHARED / "mnist" / "t10k-images-idx3-ubyte.gz"
    if path.is_file():
        with gzip.open(path, "rb") as f:
            raw = f.read(16 + n * 784)
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, 28, 28).copy()
    rng = np.random.default_rng(0)  # no shared data: random images time the same
    return rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8)


def candidates(device: torch.device) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = str(inception_weights_path())
        ts = torch.jit.load(path, map_location=device).eval()
        frozen = torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.load(path, map_location=device).eval())
        )
    folded = fold_inception(ts, channels_last=False).to(device)
    folded_cl = fold_inception(ts, channels_last=True).to(device)
    cl = torch.channels_last
    example = torch.zeros(2, 3, 299, 299, device=device).contiguous(memory_format=cl)
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.trace(folded_cl, example).eval())
        )
    found = {
        "torchscript": (ts, False),
        "torchscript-cl": (ts, True),
        "frozen-ofi": (frozen, False),
        "folded": (folded, False),
        "folded-cl": (folded_cl, True),
        "folded-cl-frozen": (traced, True),
    }
    if device.type == "cpu":
        try:
            request = openvino_inception(fold_inception(ts, channels_last=False))
        except ImportError:
            print("openvino is not installed: its candidate is left out")
        else:
            found["openvino"] = (lambda x: torch.from_numpy(request.infer([x.numpy()])[0]), False)
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default="", help="comma-separated candidate names")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", default="fid_speed.json")
    p.add_argument("--evaluate", default="", help="a run folder to time `waekit evaluate` on")
    p.add_argument("-n", type=int, default=10_000, help="images per set for --evaluate")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    extractor = InceptionFeatures(device, fast=False)
    x = extractor._prepare(torch.from_numpy(mnist(args.batch)))  # (b, 3, 299, 299)
    cands = candidates(device)
    if args.only:
        cands = {k: v for k, v in cands.items() if k in args.only.split(",")}
    inputs = {False: x.contiguous(), True: x.contiguous(memory_format=torch.channels_last)}

    def run(name: str) -> tuple[torch.Tensor, float, float]:
        """Features, images per wall-clock second, images per CPU-second of this process."""
        net, cl = cands[name]
        with torch.inference_mode():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, cpu = time.perf_counter(), time.process_time()
            y = net(inputs[cl]).reshape(x.shape[0], -1)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            return y.float().cpu(), x.shape[0] / wall, x.shape[0] / cpu

    ref = run("torchscript")[0] if "torchscript" in cands else None
    for name in cands:  # warm-up (and the reference features)
        run(name)
    rates: dict[str, list[float]] = {k: [] for k in cands}
    cpu_rates: dict[str, list[float]] = {k: [] for k in cands}
    errors: dict[str, float] = {}
    for r in range(args.rounds):
        for name in cands:
            y, rate, cpu_rate = run(name)
            rates[name].append(rate)
            cpu_rates[name].append(cpu_rate)
            if ref is not None:
                errors[name] = float((y - ref).abs().max() / ref.abs().max())
        print(
            f"round {r + 1}/{args.rounds}: "
            + ", ".join(f"{k} {v[-1]:.2f}" for k, v in rates.items()),
            flush=True,
        )

    def ratio(table: dict[str, list[float]], name: str) -> float:
        base = table.get("torchscript", table[name])
        return statistics.median(v / b for v, b in zip(table[name], base, strict=True))

    rows = []
    for name, values in rates.items():
        rows.append(
            {
                "candidate": name,
                "images_per_s": statistics.median(values),
                "ratio_to_torchscript": ratio(rates, name),
                "images_per_cpu_s": statistics.median(cpu_rates[name]),
                "cpu_ratio_to_torchscript": ratio(cpu_rates, name),
                "max_rel_error": errors.get(name),
            }
        )
    print(
        f"\nFID features, {device}, fp32, batch {args.batch}, {torch.get_num_threads()} threads, "
        f"{args.rounds} interleaved rounds (medians)"
    )
    print(
        f"{'candidate':<18} {'images/s':>9} {'x ref':>7} {'img/CPU-s':>10} {'x ref':>7} "
        f"{'max rel err':>12}"
    )
    for row in rows:
        err = row["max_rel_error"]
        print(
            f"{row['candidate']:<18} {row['images_per_s']:9.2f} {row['ratio_to_torchscript']:7.2f} "
            f"{row['images_per_cpu_s']:10.2f} {row['cpu_ratio_to_torchscript']:7.2f} "
            f"{'' if err is None else f'{err:12.2e}'}"
        )
    out = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "rounds": args.rounds,
        "rows": rows,
        "per_round": rates,
        "per_round_cpu": cpu_rates,
    }
    if args.evaluate:
        from waekit.evaluate import evaluate_run

        start = time.perf_counter()
        result = evaluate_run(args.evaluate, n=args.n, device=args.device, write=False)
        out["evaluate"] = {
            "run": args.evaluate,
            "n": result["n"],
            "seconds": time.perf_counter() - start,
        }
        took = out["evaluate"]["seconds"]
        print(f"\nwaekit evaluate {args.evaluate} -n {result['n']}: {took:.1f} s")
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
