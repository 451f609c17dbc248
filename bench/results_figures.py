"""The figures of docs/results.md, from the run folders of bench/results.sh.

    python bench/results_figures.py runs/results docs/results --one-d runs/one-d

For each data set (ROOT/mnist, ROOT/fashion) it writes one PNG per figure type with the
runs of one training seed (``--seed``, default 0) side by side, in the order of ORDER:
``samples-<data>.png`` (64 decoded prior draws, seed 0, the same draws for every run),
``recon-<data>.png`` (the same 16 test images for every run; odd rows real, even rows
reconstructed) and ``interp-<data>.png`` (the same 4 pairs of test images, 8 points on the
segment between their codes). ``--one-d RUN`` (a run of the wae-gan-mnist-1d preset)
writes ``wae-gan-mnist-1d.png``: per-label box plots of the code of every test image, the
decoder's images along the code axis and random samples. The tables come from
bench/results_table.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from waekit.generate import encode, to_float  # noqa: E402
from waekit.report.grids import image_grid, interpolation_grid, reconstruction_grid  # noqa: E402
from waekit.run import load_run  # noqa: E402

DATASETS = ("mnist", "fashion")
ORDER = ("vae", "wae-mmd", "wae-gan", "infovae", "pythae-vae", "pythae-wae-mmd")


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


def _one_d(run_dir: Path, out: Path) -> None:
    run = load_run(run_dir, device="cpu")
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
    ap.add_argument("--seed", type=int, default=0, help="the training seed whose runs are shown")
    ap.add_argument("--one-d", type=Path, default=None, help="a run of wae-gan-mnist-1d")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for key in DATASETS:
        dirs = {m: args.runs / key / m / f"seed-{args.seed}" for m in ORDER}
        runs = {
            m: load_run(d, device="cpu") for m, d in dirs.items() if (d / "config.yaml").is_file()
        }
        if not runs:
            continue
        test = np.asarray(next(iter(runs.values())).dataset().images)  # the same for every run
        grids = {m: _grids(run, test) for m, run in runs.items()}
        for kind in ("samples", "recon", "interp"):
            _panel([(m, g[kind]) for m, g in grids.items()], args.out / f"{kind}-{key}.png")
    if args.one_d is not None:
        _one_d(args.one_d, args.out)
    print(f"figures in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
