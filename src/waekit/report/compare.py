"""Several runs side by side: the WAE paper's Table 1 (FID and sharpness per model, with
real images as a reference row) and its figures of samples, for whatever runs you have.

:func:`compare_runs` writes ``comparison.md`` (with the sample grids as PNG files beside
it) and a self-contained ``comparison.html`` (grids inlined).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import torch

from waekit.report.grids import image_grid, png_bytes
from waekit.report.html import CSS, METRIC_LABELS, data_uri, format_value

__all__ = ["compare_runs", "COMPARED"]

#: The columns of the comparison, in order (metric names of evaluate_run).
COMPARED = (
    "fid_samples",
    "fid_reconstructions",
    "fid_gmm_samples",
    "sharpness_samples",
    "sharpness_reconstructions",
    "recon_cost",
    "recon_mse",
    "mmd2_codes_prior",
    "ot_samples_test",
    "ot_codes_prior",
    "iw_bound",
)


def _names(run_dirs: list[Path]) -> list[str]:
    """Folder names, made unique with their parent's name (or an index) when they repeat."""
    names = [d.name or str(d) for d in run_dirs]
    for i, name in enumerate(names):
        if names.count(name) > 1:
            names[i] = f"{run_dirs[i].parent.name}/{name}"
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[i] = f"{name} ({seen[name]})"
    return names


def _sample_grid(run, seed: int, count: int) -> bytes:
    model = run.model.eval()
    with torch.inference_mode():
        samples = model.decode(model.sample_prior(count, torch.Generator().manual_seed(seed)))
    return png_bytes(image_grid(samples, nrow=8))


def _real_row(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The paper's 'real images' row: test-image sharpness, when all runs share a data set."""
    datasets = {(r["data"]["name"], r["data"]["split"]) for r in results}
    if len(datasets) != 1 or "sharpness_test" not in results[0]["metrics"]:
        return None
    entry = results[0]["metrics"]["sharpness_test"]
    return {"sharpness_samples": entry, "sharpness_reconstructions": entry}


def compare_runs(
    run_dirs: list[str | Path],
    out_dir: str | Path,
    device: str = "auto",
    seed: int = 0,
    samples: int = 64,
    evaluate_missing: bool = True,
    fid: bool | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/comparison.md`` and ``out_dir/comparison.html``; return both paths.

    Rows are runs, columns the metrics of :data:`COMPARED` read from each RUN_DIR/metrics.json
    (a run without one is evaluated first when ``evaluate_missing``, with FID as ``fid``
    says, or as available for None; else its cells read 'n/a'). Below the table, each run's
    ``samples`` random samples (prior draws, same ``seed`` for every run).
    """
    from waekit.errors import CheckpointError
    from waekit.evaluate.fid import inception_available
    from waekit.evaluate.run import evaluate_run, read_metrics_json
    from waekit.io import atomic_write_bytes, atomic_write_text
    from waekit.run import load_run

    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise CheckpointError("compare_runs needs at least one run folder")
    out = Path(out_dir)
    names = _names(dirs)
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    grids: list[bytes] = []
    for name, d in zip(names, dirs, strict=True):
        run = load_run(d, device=device)
        result = read_metrics_json(d)
        if result is None and evaluate_missing:
            use_fid = inception_available()[0] if fid is None else fid
            result = evaluate_run(d, device=device, seed=seed, fid=use_fid)
            notes.append(
                f"{name}: metrics.json was absent; evaluated now (FID "
                f"{'on' if use_fid else 'off'})."
            )
        elif result is None:
            notes.append(f"{name}: no metrics.json (run `waekit evaluate {d}`).")
        results.append(result or {"metrics": {}, "skipped": {}, "data": {}, "model": {}})
        grids.append(_sample_grid(run, seed, samples))

    columns = [c for c in COMPARED if any(c in r["metrics"] for r in results)]
    header = ["run", "model", "d", "n"] + [METRIC_LABELS[c] for c in columns]

    def cells(name: str, r: dict[str, Any]) -> list[str]:
        model = r.get("model", {})
        row = [
            name,
            str(model.get("name", "?")),
            str(model.get("latent_dim", "?")),
            format_value(r.get("n")),
        ]
        for c in columns:
            entry = r["metrics"].get(c)
            row.append("n/a" if entry is None else format_value(entry.get("value")))
        return row

    rows = [cells(name, r) for name, r in zip(names, results, strict=True)]
    real = (
        _real_row([r for r in results if r.get("data")])
        if all(r.get("data") for r in results)
        else None
    )
    if real is not None:
        n_real = real["sharpness_samples"].get("n")
        rows.append(
            ["real test images", "", "", format_value(n_real)]
            + [format_value(real[c]["value"]) if c in real else "" for c in columns]
        )

    # -- Markdown, grids as files beside it ---------------------------------------------------
    md = ["# Run comparison", ""]
    md.append("| " + " | ".join(header) + " |")
    md.append("|" + "|".join(["---"] * 4 + ["---:"] * len(columns)) + "|")
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    md += ["", _protocol_line(results), ""]
    md += [f"- {n}" for n in notes]
    md += ["", "## Random samples", ""]
    for i, (name, png) in enumerate(zip(names, grids, strict=True)):
        file = f"samples-{i + 1}.png"
        atomic_write_bytes(out / file, png)
        md += [f"### {name}", "", f"![{name} samples]({file})", ""]
    md_path = atomic_write_text(out / "comparison.md", "\n".join(md))

    # -- HTML, self-contained -----------------------------------------------------------------
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if j >= 3 else ""}">{html.escape(c)}</td>'
            for j, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    figures = "".join(
        f'<figure><img src="{data_uri(png)}" alt="{html.escape(name)} samples">'
        f"<figcaption>{html.escape(name)}: {samples} random samples (seed {seed})</figcaption>"
        "</figure>"
        for name, png in zip(names, grids, strict=True)
    )
    note_html = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>waekit: run comparison</title><style>{CSS}</style></head><body><main>"
        "<h1>Run comparison</h1>"
        f'<table id="comparison"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f'<p class="muted">{html.escape(_protocol_line(results))}</p>{note_html}'
        f'<h2>Random samples</h2><div class="row">{figures}</div></main></body></html>\n'
    )
    html_path = atomic_write_text(out / "comparison.html", page)
    return md_path, html_path


def _protocol_line(results: list[dict[str, Any]]) -> str:
    """How the numbers were measured, or a warning that they were measured differently."""
    ns = {r.get("n") for r in results if r.get("n") is not None}
    data = {(r["data"].get("name"), r["data"].get("split")) for r in results if r.get("data")}
    fid = {(p.get("network"), p.get("n")) for r in results if (p := r.get("fid_protocol"))}
    parts = []
    if len(data) == 1:
        name, split = next(iter(data))
        parts.append(f"All runs evaluated on the {name} {split} split")
    elif data:
        parts.append("WARNING: the runs were evaluated on different data sets")
    if len(ns) == 1:
        parts.append(f"n = {next(iter(ns))} images per set")
    elif ns:
        parts.append(
            f"WARNING: different n ({', '.join(str(n) for n in sorted(ns))}); "
            "FID is comparable at equal n only"
        )
    if len(fid) == 1:
        parts.append(f"FID features: {next(iter(fid))[0]}")
    return "; ".join(parts) + ("." if parts else "")
