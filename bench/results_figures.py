"""The tables and figures of docs/results.md, from the run folders of bench/results.sh.

    python bench/results_figures.py runs/results docs/results

For each data set (runs named ``*-mnist`` and ``*-fashion``) it writes one PNG per figure
type, the runs side by side: ``samples-<data>.png`` (64 decoded prior draws, seed 0, the
same draws for every run), ``recon-<data>.png`` (the same 16 test images for every run; odd
rows real, even rows reconstructed) and ``interp-<data>.png`` (the same 4 pairs of test
images, 8 points on the segment between their codes). For the one-dimensional run it
writes ``wae-gan-mnist-1d.png``: per-label box plots of the code of every test image, and
the decoder's images along the code axis. It prints the Markdown tables: every number is
read from the runs' metrics.json (``waekit evaluate``), times.tsv and peer.json.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from waekit.evaluate.run import read_metrics_json  # noqa: E402
from waekit.generate import encode, to_float  # noqa: E402
from waekit.report.grids import image_grid, interpolation_grid, reconstruction_grid  # noqa: E402
from waekit.run import load_run  # noqa: E402

DATASETS = {"mnist": "MNIST (10,000 training images)", "fashion": "Fashion-MNIST (60,000)"}
ORDER = ("vae", "wae-mmd", "wae-gan", "infovae", "pythae-vae", "pythae-wae-mmd")
COLUMNS = (  # (metric, header, digits)
    ("fid_samples", "FID samples", 1),
    ("fid_gmm_samples", "FID GMM samples", 1),
    ("fid_reconstructions", "FID recon.", 1),
    ("sharpness_samples", "sharpness samples", 4),
    ("sharpness_reconstructions", "sharpness recon.", 4),
    ("recon_cost", "test recon. cost", 2),
    ("recon_mse", "test MSE", 4),
    ("mmd2_codes_prior", "MMD² codes", 4),
    ("ot_samples_test", "OT samples-test", 2),
    ("ot_codes_prior", "OT codes-prior", 3),
    ("iw_bound", "IW bound (nats)", 1),
)


@torch.inference_mode()
def _grids(run, test: np.ndarray, rng_seed: int = 0) -> dict[str, np.ndarray]:
    model = run.model.eval()
    rng = np.random.default_rng(rng_seed)
    pick = rng.choice(len(test), size=16, replace=False)
    ends = rng.choice(len(test), size=8, replace=False)
    samples = model.decode(model.sample_prior(64, torch.Generator().manual_seed(rng_seed)))
    real = to_float(test[pick], run.device)
    a, b = to_float(test[ends[:4]], run.device), to_float(test[ends[4:]], run.device)
    return {
        "samples": image_grid(samples, nrow=8),
        "recon": reconstruction_grid(real, model.reconstruct(real), nrow=8),
        "interp": interpolation_grid(
            model.decode, model.encode(a), model.encode(b), steps=8, start_images=a, end_images=b
        ),
    }


def _panel(grids: list[tuple[str, np.ndarray]], path: Path) -> None:
    cols = min(len(grids), 3)
    rows = -(-len(grids) // cols)
    h, w = grids[0][1].shape[:2]
    scale = 2.4 / max(h, w) * 1.0
    fig, axes = plt.subplots(
        rows, cols, figsize=(cols * w * scale, rows * (h * scale + 0.3)), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, grid) in zip(axes.flat, grids, strict=False):
        ax.imshow(
            grid.squeeze(-1) if grid.shape[-1] == 1 else grid,
            cmap="gray",
            vmin=0,
            vmax=255,
            interpolation="nearest",
        )
        ax.set_title(name, fontsize=9)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    Image.open(path).convert("L").save(path, optimize=True)  # grey images: a third the bytes


def _times(root: Path) -> dict[str, tuple[float, float]]:
    path = root / "times.tsv"
    if not path.is_file():
        return {}
    with path.open() as f:
        return {r[0]: (float(r[1]), float(r[2])) for r in csv.reader(f, delimiter="\t")}


def _fmt(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _table(runs: dict, n_train: int, times: dict) -> list[str]:
    head = ["run", *[h for _, h, _ in COLUMNS], "train (s)", "images/s", "evaluate (s)"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    real = None
    for name, run in runs.items():
        result = read_metrics_json(run.dir) or {"metrics": {}}
        m = result["metrics"]
        real = real or m.get("sharpness_test")
        train_s, eval_s = times.get(name, (None, None))
        rate = None if train_s is None else n_train * run.config.train.epochs / train_s
        lines.append(
            "| "
            + " | ".join(
                [name]
                + [_fmt(m.get(k, {}).get("value"), d) for k, _, d in COLUMNS]
                + [_fmt(train_s, 0), _fmt(rate, 0), _fmt(eval_s, 0)]
            )
            + " |"
        )
    if real is not None:
        cells = ["real test images"] + ["" for _ in COLUMNS] + ["", "", ""]
        cells[1 + [k for k, _, _ in COLUMNS].index("sharpness_samples")] = _fmt(real["value"], 4)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _one_d(root: Path, out: Path) -> None:
    run = load_run(root / "wae-gan-mnist-1d", device="cpu")
    test = run.dataset()
    codes = encode(run.model, np.asarray(test.images))[:, 0]
    labels = np.asarray(test.labels)
    fig, (ax, ax2, ax3) = plt.subplots(3, 1, figsize=(7.5, 6.6), height_ratios=[3, 0.75, 1.3])
    data = [codes[labels == k] for k in range(10)]
    ax.boxplot(data, showfliers=False, widths=0.6)
    ax.set_xticks(range(1, 11), [str(k) for k in range(10)])
    ax.set_xlabel("digit")
    ax.set_ylabel("code z (1-D)")
    ax.grid(alpha=0.3, axis="y")
    sd = float(np.sqrt(run.model.config.prior_var))
    z = torch.linspace(-2 * sd, 2 * sd, 16).view(-1, 1)
    model = run.model.eval()
    with torch.inference_mode():
        strip = image_grid(model.decode(z), nrow=16)
        samples = image_grid(model.sample(32, torch.Generator().manual_seed(0)), nrow=16)
    for axis, grid, title in (
        (ax2, strip, f"decoded z = -2σ … 2σ (σ = {sd:g}), 16 steps"),
        (ax3, samples, "32 random samples: decoded prior draws"),
    ):
        axis.imshow(grid.squeeze(-1), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    fig.tight_layout()
    fig.savefig(out / "wae-gan-mnist-1d.png", dpi=100)
    plt.close(fig)
    medians = {k: float(np.median(codes[labels == k])) for k in range(10)}
    order = sorted(medians, key=medians.get)
    print(
        f"1-D codes: labels ordered by median code: {order}; "
        f"medians {[round(medians[k], 2) for k in order]}"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    times = _times(args.runs)
    for key, title in DATASETS.items():
        names = [
            f"{m}-{key}" for m in ORDER if (args.runs / f"{m}-{key}" / "config.yaml").is_file()
        ]
        if not names:
            continue
        runs = {n: load_run(args.runs / n, device="cpu") for n in names}
        first = runs[names[0]]  # every run of a data set reads the same images
        print(f"\n### {title}\n")
        print("\n".join(_table(runs, len(first.dataset("train").images), times)))
        test = np.asarray(first.dataset().images)
        grids = {n: _grids(run, test) for n, run in runs.items()}
        for kind in ("samples", "recon", "interp"):
            _panel([(n, g[kind]) for n, g in grids.items()], args.out / f"{kind}-{key}.png")
    if (args.runs / "wae-gan-mnist-1d" / "config.yaml").is_file():
        _one_d(args.runs, args.out)
    print(f"\nfigures in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
