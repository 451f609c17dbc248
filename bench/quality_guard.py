"""Quality guard for reduced-precision training: fp32 against ``train.precision=auto``.

For each model (wae-mmd, vae), precision (fp32, auto) and seed (0, 1, 2) the quickstart
preset (small conv net, real MNIST) trains for ``--steps`` steps through ``waekit train``.
Per run it reads

- the final held-out loss: the last ``kind == "eval"`` record of RUN/metrics.jsonl (the
  trainer computes it in the run's own precision), and the same loss recomputed in fp32
  from RUN/model.safetensors on the same 500 held-out test images with the trainer's
  noise seed, so the comparison of the trained weights does not depend on bf16 arithmetic
  in the measurement itself;
- the sample FID: prior samples against random test images, ``--n-fid`` of each, with the
  reference Inception network in fp32. ``--fid evaluate`` runs ``waekit evaluate RUN -n N``
  and reads ``fid_samples`` from RUN/metrics.json (plus the reconstruction and GMM FIDs,
  three Inception passes); ``--fid samples`` computes only the prior-sample FID with the
  same network and reference images (``waekit.generate.sample`` draws the samples), a third
  of the Inception time;
- the precision the trainer actually used (the ``# Precision:`` line of RUN/config.yaml)
  and the reconstruction cost of the resolved config (``model.recon``).

The verdict per model and metric: with n seeds per precision, sample standard deviations
s_fp32 and s_fast, pooled s_p = sqrt((s_fp32^2 + s_fast^2) / 2) and the standard error of
the difference of the means se = s_p * sqrt(2 / n), the two precisions agree when
|mean_fast - mean_fp32| <= 2 se (about a two-sided 95% band; a t test with 2n - 2 = 4
degrees of freedom would allow 2.78 se, so the rule is the stricter one).

Resumable: a run whose folder has its final eval record and its FID file is skipped; a
folder with a checkpoint but no final record continues with ``--resume``. ``--table-only``
tabulates the runs that are done, e.g. while the job still runs, or after jobs split by
``--models`` wrote into one ``--out-root``.

    PYTHONPATH=src python3 bench/quality_guard.py --data-root ../shared/data \\
        --out-root runs/quality-guard --json bench/quality_guard.json
    PYTHONPATH=src python3 bench/quality_guard.py --models vae --seeds 0 --steps 20 --n-fid 50
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import waekit
from waekit.config import read_yaml
from waekit.run import load_run, read_metrics

PRECISIONS = ("fp32", "auto")
METRICS = ("holdout_loss", "holdout_loss_fp32", "fid_samples", "kid_samples_x1000")
GUARD_FILE = "quality_guard.json"  # per run: the FID and the fp32 held-out loss
HOLDOUT_NOISE_SEED = 12345  # the trainer's held-out noise seed (waekit/train.py holdout_loss)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _source_commit() -> tuple[str | None, bool | None]:
    """The git commit of the waekit sources in use, and whether they differ from it."""
    src = Path(waekit.__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return sha, bool(dirty)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_bf16_flags() -> list[str]:
    """The CPU flags behind native bf16 (AVX512_BF16 dot products, AMX tiles)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(f for f in line.split() if "bf16" in f or f.startswith("amx"))
    except OSError:
        pass
    return []


def _env() -> dict[str, str]:
    """The environment of the child processes: the same waekit sources as this script."""
    src = str(Path(waekit.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": src + (os.pathsep + path if path else "")}


def _final_eval(run_dir: Path, steps: int) -> dict[str, Any] | None:
    evals = [r for r in read_metrics(run_dir) if r.get("kind") == "eval"]
    if evals and evals[-1].get("step") == steps and (run_dir / "model.safetensors").is_file():
        return evals[-1]
    return None


def _precision_line(run_dir: Path) -> str | None:
    """The trainer's own account of its precision: config.yaml's '# Precision:' line."""
    for line in (run_dir / "config.yaml").read_text().splitlines():
        if line.startswith("# Precision:"):
            return line.removeprefix("# Precision:").strip()
    return None


def train(run_dir: Path, model: str, precision: str, seed: int, args: argparse.Namespace) -> float:
    """Train one run with ``waekit train``; seconds of wall time (0 when already done)."""
    if _final_eval(run_dir, args.steps) is not None:
        return 0.0
    cmd = [sys.executable, "-m", "waekit", "train", "--preset", "quickstart"]
    sets = {
        "model.name": model,
        "train.precision": precision,
        "train.seed": seed,
        "train.steps": args.steps,
        "data.root": args.data_root,
        "data.fallback": "false",
    }
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    cmd += ["--out", str(run_dir), "--no-report", "--no-progress"]
    if (run_dir / "checkpoints").is_dir():
        cmd.append("--resume")  # a run cut short continues from its last checkpoint
    elif run_dir.exists():
        shutil.rmtree(run_dir)  # started but nothing kept: begin again
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=_env())
    if _final_eval(run_dir, args.steps) is None:
        raise RuntimeError(f"{run_dir}: training ended without a final eval record")
    return time.perf_counter() - t0


@torch.no_grad()
def holdout_loss_fp32(run_dir: Path) -> float:
    """The trainer's held-out loss (first ``train.holdout`` test images, noise seed 12345),
    recomputed in fp32 from the saved weights."""
    run = load_run(run_dir, device="cpu")
    images = np.array(run.dataset().images[: run.config.train.holdout], copy=True)
    x = torch.from_numpy(images).float().div(255.0)
    torch.manual_seed(HOLDOUT_NOISE_SEED)
    return float(run.model.eval().losses(x)["loss"])


def fid_samples_only(run_dir: Path, n: int, seed: int) -> dict[str, Any]:
    """FID of n prior samples against n random test images (reference network, fp32)."""
    from waekit.evaluate.fid import (
        InceptionFeatures,
        cached_real_statistics,
        frechet_distance_statistics,
        gaussian_statistics,
        inception_available,
    )
    from waekit.generate import sample

    ok, reason = inception_available()
    if not ok:
        raise SystemExit(f"FID cannot be computed: {reason}")
    run = load_run(run_dir, device="cpu")
    test = np.asarray(run.dataset().images)
    # the test images `waekit evaluate --seed SEED` draws (its stream 1), so the cached
    # real-image statistics are shared with it
    idx = np.sort(np.random.default_rng([seed, 1]).choice(test.shape[0], size=n, replace=False))
    extractor = InceptionFeatures("cpu")
    real = cached_real_statistics(
        f"{run.config.data.name}-test", np.ascontiguousarray(test[idx]), extractor
    )
    fake = gaussian_statistics(extractor.features(sample(run.model, n, seed=seed)))
    return {"fid_samples": frechet_distance_statistics(fake, real)}


def fid_by_evaluate(run_dir: Path, n: int, seed: int) -> dict[str, Any]:
    """``waekit evaluate RUN -n N``; the FIDs from RUN/metrics.json."""
    cmd = [sys.executable, "-m", "waekit", "evaluate", str(run_dir), "-n", str(n)]
    cmd += ["--seed", str(seed), "--device", "cpu"]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=_env())
    result = json.loads((run_dir / "metrics.json").read_text())
    if "fid_samples" not in result["metrics"]:
        raise SystemExit(f"waekit evaluate computed no FID: {result.get('skipped', {})}")
    keys = ("fid_samples", "fid_reconstructions", "fid_gmm_samples")
    return {k: result["metrics"][k]["value"] for k in keys if k in result["metrics"]}


def measure(run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The run's FID and fp32 held-out loss, cached in RUN/quality_guard.json."""
    path = run_dir / GUARD_FILE
    key = {"fid_mode": args.fid, "n_fid": args.n_fid, "fid_seed": args.fid_seed}
    if path.is_file():
        cached = json.loads(path.read_text())
        if all(cached.get(k) == v for k, v in key.items()):
            return cached
    t0 = time.perf_counter()
    fid = (fid_by_evaluate if args.fid == "evaluate" else fid_samples_only)(
        run_dir, args.n_fid, args.fid_seed
    )
    out = {
        **key,
        **fid,
        "fid_seconds": round(time.perf_counter() - t0, 1),
        "holdout_loss_fp32": holdout_loss_fp32(run_dir),
    }
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def run_record(run_dir: Path, model: str, precision: str, seed: int, seconds: float, m: dict):
    cfg = read_yaml(run_dir / "config.yaml")
    rates = [r["images_per_s"] for r in read_metrics(run_dir) if "images_per_s" in r]
    return {
        "model": model,
        "precision": precision,
        "seed": seed,
        "dir": str(run_dir),
        "precision_used": _precision_line(run_dir),
        "recon": cfg["model"]["recon"],
        "holdout_loss": _final_eval(run_dir, cfg["train"]["steps"])["holdout_loss"],
        "holdout_loss_fp32": m["holdout_loss_fp32"],
        **{k: m[k] for k in ("fid_samples", "fid_reconstructions", "fid_gmm_samples") if k in m},
        "train_seconds": round(seconds, 1) if seconds else None,
        "images_per_s_median": statistics.median(rates) if rates else None,
        "fid_seconds": m.get("fid_seconds"),
    }


def results_record(root: Path, model: str, precision: str, seed: int) -> dict | None:
    """The record of a run that bench/results.sh trained and evaluated: ROOT/MODEL/seed-S
    (precision auto, the preset's) or ROOT/MODEL-fp32/seed-S; None while it is not done."""
    run_dir = root / (model if precision == "auto" else f"{model}-{precision}") / f"seed-{seed}"
    if not (run_dir / "metrics.json").is_file():
        return None
    cfg = read_yaml(run_dir / "config.yaml")
    if cfg["train"]["precision"] != precision or cfg["model"]["name"] != model:
        got = f"{cfg['model']['name']} {cfg['train']['precision']}"
        raise SystemExit(f"{run_dir}: trained as {got}, not {model} {precision}")
    result = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    steps = max(r["step"] for r in read_metrics(run_dir) if r.get("kind") == "eval")
    rates = [r["images_per_s"] for r in read_metrics(run_dir) if "images_per_s" in r]
    return {
        "model": model,
        "precision": precision,
        "seed": seed,
        "dir": str(run_dir),
        "precision_used": _precision_line(run_dir),
        "recon": cfg["model"]["recon"],
        "steps": steps,
        "holdout_loss": _final_eval(run_dir, steps)["holdout_loss"],
        "holdout_loss_fp32": holdout_loss_fp32(run_dir),
        "fid_samples": result["fid_samples"]["value"],
        "kid_samples_x1000": 1000 * result["kid_samples"]["value"],
        "n_fid": result["fid_samples"]["n"],
        "images_per_s_median": statistics.median(rates) if rates else None,
    }


def _sd(xs: list[float]) -> float | None:
    return statistics.stdev(xs) if len(xs) > 1 else None


def verdicts(runs: list[dict], models: list[str]) -> list[dict]:
    """Per model and metric: means, sds, the difference and whether it is within 2 se."""
    out = []
    for model in models:
        for metric in METRICS:
            vals = {
                p: [
                    r[metric]
                    for r in runs
                    if r["model"] == model and r["precision"] == p and r.get(metric) is not None
                ]
                for p in PRECISIONS
            }
            if not all(vals.values()):
                continue
            row: dict[str, Any] = {"model": model, "metric": metric}
            for p, xs in vals.items():
                row[p] = {"mean": statistics.fmean(xs), "sd": _sd(xs), "n": len(xs), "values": xs}
            n = min(len(xs) for xs in vals.values())
            diff = row["auto"]["mean"] - row["fp32"]["mean"]
            # the same seed starts both precisions from the same weights and batches: the
            # per-seed differences show a systematic shift the seed spread would hide
            seeds = {
                p: {
                    r["seed"]: r[metric]
                    for r in runs
                    if r["model"] == model and r["precision"] == p and r.get(metric) is not None
                }
                for p in PRECISIONS
            }
            paired = [
                seeds["auto"][s] - seeds["fp32"][s] for s in seeds["fp32"] if s in seeds["auto"]
            ]
            row["paired_differences"] = paired
            row["paired_sd"] = _sd(paired)
            row["difference"] = diff
            sds = [row[p]["sd"] for p in PRECISIONS]
            if n > 1 and all(s is not None for s in sds):
                pooled = math.sqrt(sum(s * s for s in sds) / 2)
                se = pooled * math.sqrt(2 / n)
                row.update(pooled_sd=pooled, se=se, bound=2 * se)
                row["agree"] = abs(diff) <= 2 * se
            else:
                row.update(pooled_sd=None, se=None, bound=None, agree=None)
            out.append(row)
    return out


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits + 2}f}" if abs(x) < 10 else f"{x:.{digits}f}"  # small losses


def table(rows: list[dict]) -> str:
    """A markdown table: mean +- sd per precision, per-seed values, and the verdict."""
    lines = [
        "| model | metric | fp32 mean ± sd | auto mean ± sd | fp32 per seed | auto per seed "
        "| auto - fp32 | 2 se | agree | per-seed auto - fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["model"], r["metric"]]
        for p in PRECISIONS:
            cells.append(f"{_fmt(r[p]['mean'])} ± {_fmt(r[p]['sd'])}")
        for p in PRECISIONS:
            cells.append(", ".join(_fmt(v) for v in r[p]["values"]))
        agree = {True: "yes", False: "**no**", None: "n/a (1 seed)"}[r["agree"]]
        cells += ["+" * (r["difference"] >= 0) + _fmt(r["difference"]), _fmt(r["bound"]), agree]
        cells.append(", ".join("+" * (d >= 0) + _fmt(d) for d in r["paired_differences"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="wae-mmd,vae")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--n-fid", type=int, default=500)
    ap.add_argument("--fid", choices=("evaluate", "samples"), default="samples")
    ap.add_argument("--fid-seed", type=int, default=0, help="seed of the FID draws (all runs)")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--out-root", default="runs/quality-guard")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument(
        "--from-results",
        default=None,
        help="train nothing: read the runs of bench/results.sh under this folder "
        "(e.g. runs/results/mnist: MODEL/seed-S in auto, MODEL-fp32/seed-S in fp32)",
    )
    ap.add_argument(
        "--table-only",
        action="store_true",
        help="train and measure nothing: tabulate the runs under --out-root that are done",
    )
    args = ap.parse_args(argv)
    models, seeds = _csv(args.models), [int(s) for s in _csv(args.seeds)]
    commit, dirty = _source_commit()
    meta = {
        "command": " ".join(["bench/quality_guard.py", *(sys.argv[1:] if argv is None else argv)]),
        "waekit_commit": commit,
        "waekit_sources_modified": dirty,
        "waekit_sources": str(Path(waekit.__file__).resolve().parent),
        "cpu": _cpu_name(),
        "cpu_bf16_flags": _cpu_bf16_flags(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "steps": args.steps,
        "n_fid": args.n_fid,
        "fid_mode": args.fid,
        "fid_seed": args.fid_seed,
        "rule": "agree when |mean_auto - mean_fp32| <= 2 se, se = s_p sqrt(2/n), "
        "s_p = sqrt((s_fp32^2 + s_auto^2)/2), sample sds over n seeds",
    }
    print(f"waekit {commit} ({'modified' if dirty else 'clean'}) on {meta['cpu']}", flush=True)

    runs: list[dict] = []
    if args.from_results:
        meta["command"] += "  (runs of bench/results.sh: FID and KID of `waekit evaluate`)"
        for seed in seeds:
            for model in models:
                for precision in PRECISIONS:
                    r = results_record(Path(args.from_results), model, precision, seed)
                    if r is not None:
                        runs.append(r)
        rows = verdicts(runs, models)
        if args.json:
            Path(args.json).write_text(
                json.dumps({**meta, "runs": runs, "verdicts": rows}, indent=2) + "\n"
            )
        print(table(rows))
        return
    # seed-major order: a job cut short still holds complete fp32/auto pairs
    for seed in seeds:
        for model in models:
            for precision in PRECISIONS:
                run_dir = Path(args.out_root) / f"{model}-{precision}" / f"seed-{seed}"
                if args.table_only and not (run_dir / GUARD_FILE).is_file():
                    continue
                seconds = train(run_dir, model, precision, seed, args)
                m = measure(run_dir, args)
                runs.append(run_record(run_dir, model, precision, seed, seconds, m))
                r = runs[-1]
                print(
                    f"{model} {precision} seed {seed}: held-out {r['holdout_loss']:.3f} "
                    f"(fp32 re-eval {r['holdout_loss_fp32']:.3f}), FID {r['fid_samples']:.2f}; "
                    f"{r['precision_used']}; recon {r['recon']}",
                    flush=True,
                )
                rows = verdicts(runs, models)
                if args.json:
                    Path(args.json).write_text(
                        json.dumps({**meta, "runs": runs, "verdicts": rows}, indent=2) + "\n"
                    )
    print(table(verdicts(runs, models)))


if __name__ == "__main__":
    main()
