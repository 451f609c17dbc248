"""FID at several N, FID_inf and KID on real data: MNIST test against Fashion-MNIST test, and
a trained model's prior samples against MNIST test (the table of docs/results.md, "FID at
small N").

N_MAX random images of each set (seed 0) go through the reference Inception network once;
FID at N uses the first N of each, FID_inf extrapolates from N-subsets of the generated (or
second) set against all N_MAX reference features (waekit.evaluate.feature_metrics), KID is
the mean ± sd over 100 subsets of min(1000, N_MAX / 2) points. The real sets' features are
cached as `waekit evaluate` caches them.

    PYTHONPATH=src python3 bench/real_metrics.py --n-max 2000 \\
        --run runs/results/mnist/wae-gan/seed-0 --json bench/real_metrics.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from waekit.config import DataConfig
from waekit.evaluate import feature_metrics as fm
from waekit.evaluate.fid import (
    InceptionFeatures,
    cached_real_features,
    frechet_distance_statistics,
    gaussian_statistics,
)
from waekit.generate import sample
from waekit.run import load_data, load_run


def _real(name: str, root: str, n: int, extractor: InceptionFeatures) -> np.ndarray:
    images = np.asarray(load_data(DataConfig(name=name, root=root, fallback=False), "test").images)
    idx = np.sort(np.random.default_rng([0, 1]).choice(images.shape[0], n, replace=False))
    return cached_real_features(f"{name}-test", np.ascontiguousarray(images[idx]), extractor)


def _fid(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance_statistics(gaussian_statistics(a), gaussian_statistics(b))


def row(name: str, ref: np.ndarray, other: np.ndarray, ns: list[int]) -> dict:
    out = {"pair": name, "fid": {}}
    for n in ns:
        out["fid"][n] = _fid(ref[:n], other[:n])
    inf = fm.fid_infinity(ref, other, points=5, seed=0)
    out["fid_inf"] = {k: inf[k] for k in ("value", "residual", "slope", "n", "fid")}
    size = min(1000, len(ref) // 2)
    out["kid"] = fm.kid(ref, other, subsets=100, subset_size=size, seed=0)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-max", type=int, default=2000)
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--run", default=None, help="a trained MNIST run folder for the model row")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    ns = [n for n in (250, 500, 1000, 2000, 5000, 10000) if n <= args.n_max]
    extractor = InceptionFeatures("cpu")
    t0 = time.perf_counter()
    mnist = _real("mnist", args.data_root, args.n_max, extractor)
    fashion = _real("fashion-mnist", args.data_root, args.n_max, extractor)
    rows = [row("MNIST test vs Fashion-MNIST test", mnist, fashion, ns)]
    if args.run:
        run = load_run(args.run, device="cpu")
        cache = Path(args.run) / f"sample-features-n{args.n_max}-seed0.npz"
        if cache.is_file():
            fake = np.load(cache)["features"]
        else:
            fake = extractor.features(sample(run.model, args.n_max, seed=0))
            np.savez(cache, features=fake)
        rows.append(row(f"{args.run} prior samples vs MNIST test", mnist, fake, ns))
    seconds = time.perf_counter() - t0
    print(f"| pair | {' | '.join(f'FID N = {n}' for n in ns)} | FID_inf (residual) | KID x 10^3 |")
    print("|---" * (len(ns) + 3) + "|")
    for r in rows:
        fids = " | ".join(f"{r['fid'][n]:.1f}" for n in ns)
        inf, kid = r["fid_inf"], r["kid"]
        print(
            f"| {r['pair']} | {fids} | {inf['value']:.1f} ({inf['residual']:.2f}) "
            f"| {1e3 * kid['value']:.2f} ± {1e3 * kid['sd']:.2f} |"
        )
    print(f"({seconds:.0f} s, features cached where they were)")
    if args.json:
        meta = {"n_max": args.n_max, "seconds": seconds, "protocol": extractor.protocol}
        args.json.write_text(json.dumps({**meta, "rows": rows}, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
