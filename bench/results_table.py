"""The tables of docs/results.md from the runs of bench/results.sh.

Reads ROOT/DATA/LABEL/seed-S/{config.yaml, metrics.json, metrics.jsonl, peer.json} and
prints, per data set, one row per label with mean ± sample sd over the seeds (and n), then
the comparisons that docs/results.md words its claims on: per metric the difference of the
means, its standard error se = sqrt(sd_a^2 / n_a + sd_b^2 / n_b), and whether |difference|
> 2 se (about a two-sided 95 % test; with 3 seeds a side, a t test would ask for ~2.8 se, so
"2 se" is the lenient reading, said as such where it matters).

    python bench/results_table.py runs/results --json bench/results.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

import yaml

#: (metric key in metrics.json, column title, scale, digits)
COLUMNS = [
    ("fid_samples", "FID", 1.0, 1),
    ("fid_inf_samples", "FID_inf", 1.0, 1),
    ("kid_samples", "KID x 10^3", 1e3, 1),
    ("precision_samples", "precision", 1.0, 3),
    ("recall_samples", "recall", 1.0, 3),
    ("sharpness_samples", "sharpness x 10^3", 1e3, 1),
    ("recon_mse", "recon MSE x 10^3", 1e3, 2),
    ("mmd2_codes_prior_sampled", "MMD^2(Q_Z, P_Z) x 10^3", 1e3, 2),
    ("holdout_loss", "held-out loss", 1.0, 2),
]

#: the order of the rows (labels not named here follow, sorted)
ORDER = [
    "vae",
    "vae-fp32",
    "pythae-vae",
    "wae-mmd",
    "wae-mmd-fp32",
    "pythae-wae-mmd",
    "wae-mmd-scale1",
    "wae-gan",
    "infovae",
]

#: (a, b, what the comparison asks)
COMPARISONS = [
    ("vae", "pythae-vae", "waekit (bf16 auto) vs pythae, the same VAE objective"),
    ("vae-fp32", "pythae-vae", "waekit fp32 vs pythae, the same VAE objective"),
    ("wae-mmd", "pythae-wae-mmd", "waekit (bf16 auto) vs pythae, the same WAE-MMD objective"),
    ("wae-mmd-fp32", "pythae-wae-mmd", "waekit fp32 vs pythae, the same WAE-MMD objective"),
    ("vae", "vae-fp32", "quality guard: bf16 autocast + channels_last vs fp32, VAE"),
    ("wae-mmd", "wae-mmd-fp32", "quality guard: bf16 autocast + channels_last vs fp32, WAE-MMD"),
    ("wae-mmd", "wae-mmd-scale1", "official cost scale 0.05 vs the paper text's 1.0"),
    ("wae-mmd", "vae", "WAE-MMD vs VAE"),
    ("wae-gan", "vae", "WAE-GAN vs VAE"),
    ("wae-gan", "wae-mmd", "WAE-GAN vs WAE-MMD"),
    ("infovae", "wae-mmd", "InfoVAE vs WAE-MMD"),
]

#: (a, b): pairs of runs whose seed fixes the same initial weights, batch order and noise
#: (waekit on both sides; only a precision differs), so a seed's difference is meaningful
PAIRED = [("vae", "vae-fp32"), ("wae-mmd", "wae-mmd-fp32")]


def _run_record(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    rec: dict[str, Any] = {
        "dir": str(run_dir),
        "seed": cfg["train"]["seed"],
        "model": cfg["model"]["name"],
        "recon": cfg["model"]["recon"],
        "recon_scale": cfg["model"].get("recon_scale"),
        "precision": cfg["train"]["precision"],
        "library": "waekit",
        "n_fid": result["fid_protocol"]["n"] if result.get("fid_protocol") else None,
    }
    records = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    peer = run_dir / "peer.json"
    by_peer = peer.is_file()
    if by_peer:
        info = json.loads(peer.read_text())
        rec["library"] = f"{info['library']} {info['version']}"
        rec["precision"] = "fp32"  # pythae's trainer has no autocast
        rec["images_per_s"] = info["images_per_s"]
    else:
        rates = [r["images_per_s"] for r in records if r.get("images_per_s") is not None]
        rec["images_per_s"] = statistics.median(rates) if rates else None
    # the training objective on the held-out test images, at the last evaluation; waekit's
    # trainer only (pythae's evaluation loop batches and draws differently: not comparable)
    evals = [r["holdout_loss"] for r in records if r.get("holdout_loss") is not None]
    rec["holdout_loss"] = evals[-1] if evals and not by_peer else None
    for key, _, scale, _ in COLUMNS:
        if key == "holdout_loss":
            continue
        entry = result["metrics"].get(key)
        if entry is None and key.endswith("_sampled"):
            # a deterministic encoder: Q_Z is the push-forward of the codes themselves
            entry = result["metrics"].get(key.removesuffix("_sampled"))
        rec[key] = None if entry is None else entry["value"] * scale
    return rec


def collect(root: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{data set: {label: [run records, by seed]}} of the runs that are evaluated."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for data_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "logs"):
        for label_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
            runs = [_run_record(d) for d in sorted(label_dir.glob("seed-*"))]
            runs = [r for r in runs if r is not None]
            if runs:
                out.setdefault(data_dir.name, {})[label_dir.name] = runs
    rank = {label: i for i, label in enumerate(ORDER)}
    return {
        data: dict(sorted(labels.items(), key=lambda kv: (rank.get(kv[0], len(ORDER)), kv[0])))
        for data, labels in out.items()
    }


def stats(runs: list[dict[str, Any]], key: str) -> tuple[float, float | None, int] | None:
    xs = [r[key] for r in runs if r.get(key) is not None]
    if not xs:
        return None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None), len(xs)


def _cell(s: tuple[float, float | None, int] | None, digits: int) -> str:
    if s is None:
        return "-"
    mean, sd, _ = s
    return f"{mean:.{digits}f}" + ("" if sd is None else f" ± {sd:.{digits}f}")


def label_table(labels: dict[str, list[dict[str, Any]]]) -> str:
    head = ["run", "library", "precision", "seeds"] + [c[1] for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, runs in labels.items():
        cells = [
            label,
            runs[0]["library"],
            runs[0]["precision"],
            ", ".join(str(r["seed"]) for r in runs),
        ]
        cells += [_cell(stats(runs, key), digits) for key, _, _, digits in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    sa, sb = stats(a, key), stats(b, key)
    if sa is None or sb is None or sa[1] is None or sb[1] is None:
        return None
    diff = sa[0] - sb[0]
    se = math.sqrt(sa[1] ** 2 / sa[2] + sb[1] ** 2 / sb[2])
    return {"difference": diff, "se": se, "beyond_2se": abs(diff) > 2 * se}


#: the columns compared between rows (the codes' MMD² is a property of one model, not a score)
COMPARED = [c for c in COLUMNS if c[0] != "mmd2_codes_prior_sampled"]


def _difference(c: dict[str, Any] | None, digits: int) -> str:
    """A difference cell: ``+d (se s)``, bold beyond 2 se, ``-`` when there is none."""
    if c is None:
        return "-"
    text = f"{c['difference']:+.{digits}f} (se {c['se']:.{digits}f})"
    return f"**{text}**" if c["beyond_2se"] else text


def comparison_table(labels: dict[str, list[dict[str, Any]]]) -> str:
    head = ["a - b", "question"] + [c[1] for c in COMPARED]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a, b, question in COMPARISONS:
        if a not in labels or b not in labels:
            continue
        cells = [f"{a} - {b}", question]
        same_objective = all(
            labels[a][0][k] == labels[b][0][k] for k in ("model", "recon", "recon_scale")
        )
        for key, _, _, digits in COMPARED:
            # a held-out loss is in its objective's units: compared within one objective only
            comparable = key != "holdout_loss" or same_objective
            c = compare(labels[a], labels[b], key) if comparable else None
            cells.append(_difference(c, digits))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """Differences a - b seed by seed, their mean and standard error (sd / sqrt(n))."""
    bs = {r["seed"]: r.get(key) for r in b}
    ds = [
        r[key] - bs[r["seed"]]
        for r in a
        if r.get(key) is not None and bs.get(r["seed"]) is not None
    ]
    if len(ds) < 2:
        return None
    mean, sd = statistics.fmean(ds), statistics.stdev(ds)
    se = sd / math.sqrt(len(ds))
    return {"per_seed": ds, "difference": mean, "se": se, "beyond_2se": abs(mean) > 2 * se}


def paired_table(labels: dict[str, list[dict[str, Any]]]) -> str:
    head = ["a - b", "seeds"] + [c[1] for c in COMPARED]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a, b in PAIRED:
        if a not in labels or b not in labels:
            continue
        common = sorted({r["seed"] for r in labels[a]} & {r["seed"] for r in labels[b]})
        cells = [f"{a} - {b}", ", ".join(map(str, common))]
        for key, _, _, digits in COMPARED:
            c = paired(labels[a], labels[b], key)
            per_seed = "" if c is None else ", ".join(f"{d:+.{digits}f}" for d in c["per_seed"])
            cells.append(_difference(c, digits) + (f": {per_seed}" if per_seed else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, nargs="?", default=Path("runs/results"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    data = collect(args.root)
    for name, labels in data.items():
        n_fid = sorted({r["n_fid"] for runs in labels.values() for r in runs})
        print(f"## {name} (FID, KID, precision and recall at N = {n_fid})\n")
        print(label_table(labels) + "\n")
        print("Differences of the means (bold: beyond 2 se)\n")
        print(comparison_table(labels) + "\n")
        table = paired_table(labels)
        if table:
            print("Paired by seed: mean of a - b over seeds (se), then each seed's a - b\n")
            print(table + "\n")
    if args.json:
        args.json.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
