"""One self-contained HTML page per run: metrics, curves, samples, reconstructions,
interpolations and views of the codes. Images are inlined as base64 PNG data URIs and the
CSS is in the page, so RUN_DIR/report.html can be mailed or archived on its own."""

from __future__ import annotations

import base64
import html
import json
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import torch

from waekit.evaluate.run import better
from waekit.generate import encode_batched, to_float
from waekit.report import plots
from waekit.report.grids import image_grid, interpolation_grid, png_bytes, reconstruction_grid

__all__ = [
    "write_report",
    "load_metrics",
    "better",
    "evaluate_hint",
    "REPORT_FILE",
    "METRIC_LABELS",
    "format_value",
    "data_uri",
    "CSS",
]

REPORT_FILE = "report.html"

#: Display names of the metrics of :func:`waekit.evaluate.evaluate_run`, in table order.
METRIC_LABELS: dict[str, str] = {
    "fid_samples": "FID, prior samples",
    "fid_reconstructions": "FID, test reconstructions",
    "fid_gmm_samples": "FID, GMM-sampler samples",
    "fid_inf_samples": "FID∞ (extrapolated to N = ∞), prior samples",
    "fid_inf_reconstructions": "FID∞, test reconstructions",
    "fid_inf_gmm_samples": "FID∞, GMM-sampler samples",
    "kid_samples": "KID (unbiased at any N), prior samples",
    "kid_reconstructions": "KID, test reconstructions",
    "kid_gmm_samples": "KID, GMM-sampler samples",
    "precision_samples": "Precision (samples on the data manifold), prior samples",
    "recall_samples": "Recall (data covered by samples), prior samples",
    "density_samples": "Density, prior samples",
    "coverage_samples": "Coverage, prior samples",
    "precision_gmm_samples": "Precision, GMM-sampler samples",
    "recall_gmm_samples": "Recall, GMM-sampler samples",
    "density_gmm_samples": "Density, GMM-sampler samples",
    "coverage_gmm_samples": "Coverage, GMM-sampler samples",
    "precision_reconstructions": "Precision, test reconstructions",
    "recall_reconstructions": "Recall, test reconstructions",
    "density_reconstructions": "Density, test reconstructions",
    "coverage_reconstructions": "Coverage, test reconstructions",
    "sharpness_samples": "Sharpness, prior samples",
    "sharpness_reconstructions": "Sharpness, reconstructions",
    "sharpness_gmm_samples": "Sharpness, GMM-sampler samples",
    "sharpness_test": "Sharpness, real test images",
    "recon_cost": "Reconstruction cost per image",
    "recon_mse": "Reconstruction MSE per pixel",
    "mmd2_codes_prior": "MMD² (posterior means of test codes, prior)",
    "mmd2_codes_prior_sampled": "MMD² (codes sampled from q(z|x), i.e. Q_Z, prior)",
    "ot_samples_test": "W₂ (prior samples, test images)",
    "ot_reconstructions_test": "W₂ (reconstructions, test images)",
    "ot_codes_prior": "W₂ (posterior means of test codes, prior)",
    "ot_codes_prior_sampled": "W₂ (codes sampled from q(z|x), i.e. Q_Z, prior)",
    "iw_bound": "IW bound on log p(x), nats",
}

#: Display names of the entries of a result's "skipped" (measurements not made, with why).
SKIPPED_LABELS: dict[str, str] = {
    "fid": "FID (samples, reconstructions, GMM samples)",
    "gmm": "GMM-sampler metrics",
    "iw_bound": METRIC_LABELS["iw_bound"],
}

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
       margin: 0; background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
p.sub, .muted { color: var(--muted); }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; font-size: 14px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
td.desc { color: var(--muted); font-size: 13px; }
td.better { white-space: nowrap; }
.note { background: #fff8c5; border: 1px solid #d4a72c66; padding: 8px 12px; border-radius: 6px; }
.info { background: var(--bg); border: 1px solid var(--line); padding: 8px 12px;
        border-radius: 6px; }
code { font-size: 13px; background: var(--bg); padding: 1px 4px; border-radius: 4px; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid var(--line); }
figure img.plot { image-rendering: auto; border: none; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
pre { background: var(--bg); padding: 12px; border-radius: 6px; overflow-x: auto; font-size: 13px; }
.row { display: flex; flex-wrap: wrap; gap: 24px; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def format_value(value: Any) -> str:
    """Numbers for tables: 4 significant digits, scientific notation when very small/large."""
    if value is None:
        return "n/a"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):,}"
    v = float(value)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.3e}"
    return f"{v:.4g}"


#: Which way is better, by metric-name prefix (first match wins); see README "Reading the
#: report". Sharpness is better the closer it is to the real test images' value.
def evaluate_hint(run_dir: str | Path) -> str:
    """The command that (re-)measures a run, quoted so that it can be pasted into a shell."""
    return f"waekit evaluate {shlex.quote(str(run_dir))}"


def load_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """RUN_DIR/metrics.json as :func:`waekit.evaluate.evaluate_run` writes it, or None when
    the file is absent. A file that is not JSON, is truncated or has the wrong shape raises
    :class:`~waekit.errors.CheckpointError` naming the file and the command that rewrites it.
    """
    from waekit.errors import CheckpointError
    from waekit.evaluate.run import METRICS_JSON

    path = Path(run_dir) / METRICS_JSON
    if not path.exists():
        return None
    fix = f"rewrite it with `{evaluate_hint(run_dir)}`"
    try:
        result = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = (
            f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else f"unreadable ({type(exc).__name__})"
        )
        raise CheckpointError(f"{path} is {why}; {fix}") from None
    problem = _metrics_problem(result)
    if problem:
        raise CheckpointError(f"{path} is not a waekit metrics file ({problem}); {fix}")
    return result


def _metrics_problem(result: Any) -> str | None:
    """What is wrong with the shape of a parsed metrics.json, or None."""
    if not isinstance(result, dict):
        return f"a JSON {type(result).__name__} instead of an object"
    metrics = result.get("metrics")
    if not isinstance(metrics, dict):
        return "no 'metrics' object"
    for name, entry in metrics.items():
        if not isinstance(entry, dict):
            return f"metric {name[:40]!r} is not an object"
        value = entry.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"metric {name[:40]!r} has a value that is not a number"
    for key in ("skipped", "model", "data"):
        if not isinstance(result.get(key, {}), dict):
            return f"{key!r} is not an object"
    return None


def _img(png: bytes, alt: str, caption: str, plot: bool = False, width: int | None = None) -> str:
    cls = ' class="plot"' if plot else ""
    size = f' width="{width}"' if width else ""
    return (
        f'<figure><img{cls}{size} src="{data_uri(png)}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _grid_img(grid: np.ndarray, alt: str, caption: str) -> str:
    """An image grid shown at an integer zoom (crisp pixels), at most about 720 px wide."""
    zoom = max(1, min(4, 720 // grid.shape[1]))
    return _img(png_bytes(grid), alt, caption, width=grid.shape[1] * zoom)


def _details(entry: dict[str, Any]) -> str:
    parts = [str(entry.get("description", ""))]
    extra = {
        k: v
        for k, v in entry.items()
        if k not in ("value", "description", "n", "split", "seed", "network", "gmm", "fit_fid")
    }
    parts += [f"{k} = {format_value(v) if isinstance(v, float) else v}" for k, v in extra.items()]
    if "gmm" in entry:
        g = entry["gmm"]
        parts.append(f"GMM: {g.get('components')} components on {g.get('fitted_on')}")
    return "; ".join(p for p in parts if p)


def metrics_table(result: dict[str, Any], run_dir: str | Path | None = None) -> str:
    """The metrics of an evaluate_run result as an HTML table (value, N, split, how); the rows
    of skipped measurements say why, and for FID which command computes it."""
    rows = []
    names = [k for k in METRIC_LABELS if k in result["metrics"]]
    names += [k for k in result["metrics"] if k not in METRIC_LABELS]
    for name in names:
        e = result["metrics"][name]
        rows.append(
            f"<tr><td>{html.escape(METRIC_LABELS.get(name, name))}</td>"
            f'<td class="num">{format_value(e.get("value"))}</td>'
            f'<td class="better">{better(name)}</td>'
            f'<td class="num">{format_value(e.get("n"))}</td>'
            f"<td>{html.escape(str(e.get('split', '')))}</td>"
            f'<td class="desc">{html.escape(_details(e))}</td></tr>'
        )
    for name, reason in result.get("skipped", {}).items():
        rows.append(
            f"<tr><td>{html.escape(SKIPPED_LABELS.get(name, name))}</td>"
            '<td class="num">not measured</td><td></td><td></td><td></td>'
            f'<td class="desc">{_skipped_reason(name, str(reason), run_dir)}</td></tr>'
        )
    return (
        '<table id="metrics"><thead><tr><th>Metric</th><th>Value</th><th>Better</th><th>N</th>'
        "<th>Split</th>"
        "<th>How it was measured</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _skipped_reason(name: str, reason: str, run_dir: str | Path | None) -> str:
    """Why a measurement is missing, as HTML; for FID, the command that computes it."""
    if name != "fid" or run_dir is None:
        return html.escape(reason)
    command = f"<code>{html.escape(evaluate_hint(run_dir))}</code>"
    if reason.startswith("disabled"):
        return (
            "left out when these numbers were made (the Inception network takes minutes on "
            f"a CPU); {command} computes it"
        )
    return f"{html.escape(reason)}; then {command} computes it"


def _fid_protocol(result: dict[str, Any]) -> str:
    protocol = result.get("fid_protocol")
    if not protocol:
        return ""
    items = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in protocol.items()
    )
    return f"<h3>FID protocol</h3><table>{items}</table>"


def _figures(run, seed: int, n_codes: int) -> dict[str, str]:
    """The image sections, as HTML snippets, computed from the model and the test split."""
    model = run.model.eval()
    dev = run.device
    test = run.dataset()
    images = np.asarray(test.images)
    labels = None if getattr(test, "labels", None) is None else np.asarray(test.labels)
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    with torch.inference_mode():
        gen = torch.Generator().manual_seed(seed)
        samples = model.decode(model.sample_prior(64, gen))
        out["samples"] = _grid_img(
            image_grid(samples, nrow=8),
            "random samples",
            f"64 random samples: decoded draws from the prior N(0, {model.config.prior_var:g} I)",
        )
        pick = rng.choice(len(images), size=min(32, len(images)), replace=False)
        real = to_float(images[pick], dev)
        recon = model.reconstruct(real)
        out["recon"] = _grid_img(
            reconstruction_grid(real, recon, nrow=8),
            "reconstructions",
            "Test reconstructions: odd rows are real test images, even rows their reconstructions",
        )
        pairs = min(8, len(images) // 2)
        ends = rng.choice(len(images), size=2 * pairs, replace=False)
        a = to_float(images[ends[:pairs]], dev)
        b = to_float(images[ends[pairs:]], dev)
        grid = interpolation_grid(
            model.decode, model.encode(a), model.encode(b), steps=10, start_images=a, end_images=b
        )
        out["interp"] = _grid_img(
            grid,
            "latent interpolations",
            "Latent interpolations: each row decodes 10 evenly spaced points on the segment "
            "between the codes of the real test images at its two ends",
        )
        keep = np.sort(rng.choice(len(images), size=min(n_codes, len(images)), replace=False))
        codes = encode_batched(model, images[keep], batch_size=256).numpy()
    lab = None if labels is None else labels[keep]
    what = f"{len(keep)} test codes (posterior means)"
    out["explorer"] = _explorer(model, codes, keep, dev, what)
    out["scatter"] = _img(
        plots.code_scatter(codes, lab, seed),
        "code scatter",
        f"{what}, coloured by label" if lab is not None else what,
        plot=True,
    )
    out["box"] = _img(
        plots.latent_boxplots(codes, lab),
        "latent box plots",
        f"Each latent dimension per label, {what}",
        plot=True,
    )
    out["hist"] = _img(
        plots.marginal_histograms(codes, run.model.config.prior_var),
        "code marginals",
        f"Code marginals ({what}) against the prior density",
        plot=True,
    )
    return out


def _explorer(model, codes: np.ndarray, keep: np.ndarray, dev, what: str) -> str:
    """The latent explorer from the prior's mean and the codes of two test images."""
    from waekit.report.explorer import build_explorer, explorer_html

    d = codes.shape[1]
    bases = np.concatenate([np.zeros((1, d)), codes[:2]])
    names = ["z = 0, the prior's mean"] + [f"code of test image #{i}" for i in keep[:2]]
    explorer = build_explorer(model.decode, codes, bases, names, model.config.prior_var, device=dev)
    return explorer_html(explorer, what)


def write_report(
    run_dir: str | Path,
    device: str = "auto",
    *,
    fid: bool | None = None,
    n: int | None = None,
    seed: int = 0,
    n_codes: int = 2000,
) -> Path:
    """Write RUN_DIR/report.html and return its path.

    The metrics come from RUN_DIR/metrics.json; when it is absent, :func:`evaluate_run`
    is run first (with ``n``, ``seed``, and FID when ``fid`` is true or, for None, when
    the FID network is installed and the run is on a GPU: on a CPU, FID costs minutes of
    Inception, which ``waekit evaluate`` spends with a progress bar), and the page says so.
    ``n_codes`` test codes feed the scatter, box plots and histograms.
    """
    from waekit.evaluate.fid import inception_available
    from waekit.evaluate.run import METRICS_JSON, evaluate_run
    from waekit.io import atomic_write_text
    from waekit.run import load_run, read_metrics

    run_dir = Path(run_dir)
    run = load_run(run_dir, device=device)
    result = load_metrics(run_dir)
    note = ""
    if result is None:
        use_fid = (inception_available()[0] and run.device.type == "cuda") if fid is None else fid
        result = evaluate_run(run_dir, n=n, device=device, seed=seed, fid=use_fid)
        note = (
            f"Measured while writing this report: {result['n']:,} test images, seed {seed}, "
            f"FID {'included' if use_fid else 'left out'}; saved to "
            f"{html.escape(str(run_dir / METRICS_JSON))}. "
            f"<code>{html.escape(evaluate_hint(run_dir))}</code> measures again "
            "(<code>-n</code> sets the number of images)"
            + ("" if use_fid else " and adds FID")
            + ", and the next report shows its numbers."
        )
    figures = _figures(run, seed, n_codes)
    curves = plots.training_curves(read_metrics(run_dir))
    cfg = run.config
    title = f"{cfg.model.name} on {cfg.data.name}"
    sections = [
        (
            "metrics",
            "Metrics",
            (f'<p class="info">{note}</p>' if note else "")
            + f'<p class="muted">{html.escape(_summary(result))}</p>'
            + metrics_table(result, run_dir)
            + _fid_protocol(result),
        ),
        (
            "curves",
            "Training curves",
            _img(
                curves,
                "training curves",
                "Logged terms of metrics.jsonl against the step",
                plot=True,
            )
            if curves
            else '<p class="muted">metrics.jsonl holds no records.</p>',
        ),
        ("samples", "Random samples", figures["samples"]),
        ("recon", "Reconstructions", figures["recon"]),
        ("interp", "Interpolations", figures["interp"]),
        ("explorer", "Latent explorer", figures["explorer"]),
        ("codes", "Codes", figures["scatter"] + figures["box"] + figures["hist"]),
        ("config", "Run config", f"<pre>{html.escape(cfg.to_yaml())}</pre>"),
    ]
    nav = "".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{html.escape(name)}</h2>{content}</section>'
        for key, name, content in sections
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}: waekit report</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}</style></head><body><main><h1>{html.escape(title)}</h1>"
        f'<p class="sub">{html.escape(str(run_dir))}</p><nav>{nav}</nav>{body}'
        "</main></body></html>\n"
    )
    return atomic_write_text(run_dir / REPORT_FILE, page)


def _summary(result: dict[str, Any]) -> str:
    model = result.get("model", {})
    data = result.get("data", {})
    return (
        f"{model.get('name')} (d = {model.get('latent_dim')}, {model.get('encoder')} encoder), "
        f"evaluated on {result.get('n')} of the {data.get('size')} {data.get('name')} "
        f"{data.get('split')} images, seed {result.get('seed')}, on {result.get('device')}."
    )
