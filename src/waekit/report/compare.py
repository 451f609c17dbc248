"""Several runs side by side: the WAE paper's Table 1 (FID, sharpness and the other metrics
per model) and its figures of samples, for whatever runs you have.

Runs whose resolved configs differ only in ``train.seed`` (and in keys that do not change
what is trained, :data:`IGNORED_KEYS`) form one group: a group's cell is the mean, the
sample standard deviation and the number of runs that measured the metric. The keys in
which the groups differ are listed with their values. Every numeric metric of
metrics.json is aggregated, so metrics added to ``waekit evaluate`` appear on their own.

:func:`compare_runs` writes ``comparison.md`` (with the sample grids as PNG files beside
it) and a self-contained ``comparison.html`` (grids inlined).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from waekit.errors import DataError, brief
from waekit.report.grids import image_grid, png_bytes
from waekit.report.html import (
    CSS,
    METRIC_LABELS,
    better,
    data_uri,
    evaluate_hint,
    format_value,
)

__all__ = [
    "compare_runs",
    "expand_run_dirs",
    "group_runs",
    "summarize",
    "Summary",
    "IGNORED_KEYS",
    "default_out_dir",
]

#: Config keys that do not change what a run trains or measures: runs that differ only in
#: these (and in train.seed) are one group.
IGNORED_KEYS = frozenset(
    {
        "train.seed",
        "train.device",
        "train.log_every",
        "train.image_every",
        "train.checkpoint_every",
        "data.root",
        "data.download",
    }
)

#: The metric whose value depends on the training cost: its rows always name the cost.
_COST_METRICS = ("recon_cost",)

_WIDE_CSS = """
main { max-width: 1360px; }
.scroll { overflow-x: auto; max-width: 100%; }
table.wide { width: auto; min-width: 60%; }
table.wide th { white-space: normal; }
table.wide td.num { white-space: nowrap; }
span.n { color: var(--muted); font-size: 12px; }
"""


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (ddof = 1; None for one value) and count."""

    mean: float
    sd: float | None
    n: int

    def text(self) -> str:
        if self.n == 1:
            return format_value(self.mean)
        return f"{format_value(self.mean)} ± {format_value(self.sd)} (n = {self.n})"


def summarize(values: list[float]) -> Summary:
    """Mean and sample standard deviation sqrt(sum (v - mean)^2 / (n - 1)) of the values."""
    if not values:
        raise ValueError("summarize needs at least one value")
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Summary(mean, sd, n)


def _is_run(path: Path) -> bool:
    from waekit.run import CONFIG_FILE

    return (path / CONFIG_FILE).is_file()


def _natural(path: Path) -> list[Any]:
    """Sort key that puts seed-2 before seed-10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def expand_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Run folders from the paths given: a run folder stands for itself; a folder that is
    not a run but holds runs (``waekit train --seeds ... --out OUT`` writes OUT/seed-N)
    stands for those runs, in natural order."""
    from waekit.errors import CheckpointError
    from waekit.run import CONFIG_FILE

    runs: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if _is_run(path):
            runs.append(path)
            continue
        inside = (
            sorted((p for p in path.iterdir() if _is_run(p)), key=_natural)
            if (path.is_dir())
            else []
        )
        if not inside:
            what = "does not exist" if not path.exists() else f"holds no {CONFIG_FILE}"
            raise CheckpointError(
                f"{str(path)!r} {what}, nor does any folder in it: pass run folders "
                "written by `waekit train` (its --out)"
            )
        runs += inside
    if not runs:
        raise CheckpointError("compare needs at least one run folder")
    return runs


def default_out_dir(run_dirs: list[Path]) -> Path:
    """Where the comparison goes by default: a ``compare`` folder in the folder that holds
    the runs (their common parent; the first run's parent when they share none)."""
    parents = [os.path.abspath(d.parent if d.name else d) for d in run_dirs]
    try:
        common = Path(os.path.commonpath(parents))
    except ValueError:  # different drives
        common = Path(parents[0])
    if common.parent == common:  # the file-system root: not a place to write into
        common = Path(parents[0])
    cwd = Path.cwd()
    out = common / "compare"
    return out.relative_to(cwd) if out.is_relative_to(cwd) else out


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model.lam": 10.0, ...} from a nested config dict; lists become tuples."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        else:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def trained_by(run_dir: Path) -> str:
    """The library that trained a run: ``waekit``, or the ``library`` and ``version`` of
    RUN/peer.json, which a peer's trainer writing a waekit run folder leaves (e.g.
    bench/pythae_peer.py). Runs of one config trained by different libraries are different
    groups."""
    path = Path(run_dir) / "peer.json"
    if not path.is_file():
        return "waekit"
    try:
        peer = json.loads(path.read_text())
        return f"{peer['library']} {peer.get('version', '')}".strip()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path} cannot be read ({brief(str(exc))}): it names the library that trained "
            f"the run; restore it, or delete it if waekit trained {run_dir}"
        ) from exc


def group_runs(configs: list[dict[str, Any]]) -> list[list[int]]:
    """Indices of the runs grouped by config: equal flattened configs once the keys of
    :data:`IGNORED_KEYS` are dropped. Groups and their members keep the order given."""
    groups: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        key = tuple(sorted((k, repr(v)) for k, v in _flat(config).items() if k not in IGNORED_KEYS))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Flattened keys (outside :data:`IGNORED_KEYS`) whose values are not all equal."""
    flats = [_flat(c) for c in configs]
    keys = sorted({k for f in flats for k in f} - IGNORED_KEYS)
    return [k for k in keys if len({repr(f.get(k, "<absent>")) for f in flats}) > 1]


def _names(run_dirs: list[Path]) -> list[str]:
    """Folder names; PARENT/NAME for all when names repeat (OUT1/seed-0, OUT2/seed-0), and an
    index for what still repeats."""
    names = [d.name or str(d) for d in run_dirs]
    if len(set(names)) < len(names):
        names = [f"{d.absolute().parent.name}/{n}" for d, n in zip(run_dirs, names, strict=True)]
    return _number_repeats(names, "{name} ({k})")


def _number_repeats(names: list[str], form: str) -> list[str]:
    """``names`` with every name that occurs more than once numbered in ``form``."""
    repeated = {name for name in names if names.count(name) > 1}
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in repeated:
            seen[name] = seen.get(name, 0) + 1
            name = form.format(name=name, k=seen[name])
        out.append(name)
    return out


def _group_names(groups: list[list[int]], dirs: list[Path], names: list[str]) -> list[str]:
    """A run's name for a group of one; the shared parent folder's name (OUT of OUT/seed-N)
    for a group of several, else its first run's name with the count of the others."""
    out = []
    for members in groups:
        parents = {dirs[i].absolute().parent for i in members}
        if len(members) == 1:
            out.append(names[members[0]])
        elif len(parents) == 1 and next(iter(parents)).name:
            out.append(next(iter(parents)).name)
        else:
            out.append(f"{names[members[0]]} (+{len(members) - 1})")
    return _number_repeats(out, "{name} #{k}")


def cost_label(model: dict[str, Any]) -> str:
    """The reconstruction cost of a model config, with its scale: what recon_cost sums."""
    if model.get("recon") == "bernoulli":
        return "Bernoulli cross-entropy"
    return f"{float(model.get('recon_scale', 1.0)):g} × squared L2"


def _variant(name: str, entry: dict[str, Any], config: dict[str, Any]) -> str | None:
    """How a metric was measured, where runs can measure it differently: the cost for
    recon_cost, the feature network for FID. Values of different variants get separate rows."""
    if name in _COST_METRICS:
        return cost_label(config.get("model", {}))
    if name.startswith("fid") and entry.get("network"):
        return str(entry["network"])
    return None


def _numeric(entry: Any) -> float | None:
    value = entry.get("value") if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _sample_grid(run, seed: int, count: int) -> bytes:
    model = run.model.eval()
    with torch.inference_mode():
        samples = model.decode(model.sample_prior(count, torch.Generator().manual_seed(seed)))
    return png_bytes(image_grid(samples, nrow=8))


@dataclass
class _Row:
    label: str
    better: str  # 'lower', 'higher', ...
    cells: list[str]  # one per column (groups or runs)

    def line(self) -> list[str]:
        return [self.label, self.better, *self.cells]


def _metric_rows(
    results: list[dict[str, Any]],
    configs: list[dict[str, Any]],
    columns: list[list[int]],
) -> list[_Row]:
    """One row per (metric, variant); a column aggregates the runs of its index list."""
    order: list[str] = [k for k in METRIC_LABELS if any(k in r["metrics"] for r in results)]
    order += sorted({k for r in results for k in r["metrics"]} - set(order))
    rows: list[_Row] = []
    for name in order:
        variants: dict[str | None, dict[int, float]] = {}
        for i, r in enumerate(results):
            value = _numeric(r["metrics"].get(name))
            if value is None:
                continue
            variant = _variant(name, r["metrics"][name], configs[i])
            variants.setdefault(variant, {})[i] = value
        if not variants:
            continue
        show_variant = name in _COST_METRICS or len(variants) > 1
        for variant, values in variants.items():
            label = METRIC_LABELS.get(name, name)
            if show_variant and variant:
                label += f" [{variant}]"
            cells = []
            for members in columns:
                got = [values[i] for i in members if i in values]
                cells.append(summarize(got).text() if got else "n/a")
            rows.append(_Row(label, better(name), cells))
    return rows


def _markdown_table(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    numeric_from = min(numeric_from, len(header))
    align = ["---"] * numeric_from + ["---:"] * (len(header) - numeric_from)
    return [line(header), "|" + "|".join(align) + "|"] + [line(r) for r in rows]


def _html_table(table_id: str, header: list[str], rows: list[list[str]], numeric_from: int) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if j >= numeric_from else ""}">{_cell_html(c)}</td>'
            for j, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="scroll"><table class="wide" id="{table_id}"><thead><tr>{head}</tr>'
        f"</thead><tbody>{body}</tbody></table></div>"
    )


def _cell_html(text: str) -> str:
    """A cell; the '(n = k)' of an aggregate in small muted type."""
    match = re.fullmatch(r"(.*?)( \(n = \d+\))", text)
    if not match:
        return html.escape(text)
    return f'{html.escape(match[1])}<span class="n">{html.escape(match[2])}</span>'


def compare_runs(
    run_dirs: list[str | Path],
    out_dir: str | Path | None = None,
    device: str = "auto",
    seed: int = 0,
    samples: int = 64,
    evaluate_missing: bool = True,
    fid: bool | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/comparison.md`` and ``out_dir/comparison.html``; return both paths.

    ``run_dirs`` are run folders or folders of runs (see :func:`expand_run_dirs`);
    ``out_dir`` defaults to :func:`default_out_dir`. Runs are grouped by config
    (:func:`group_runs`); the table has one row per metric of metrics.json and one column
    per group (mean ± sd over its runs, and n), and a per-run table follows when a group
    has several runs. A run without metrics.json is measured first when
    ``evaluate_missing`` (FID as ``fid`` says; for None, on a GPU when the network is
    installed), else its cells read 'n/a'. Below the tables, each run's ``samples`` prior
    samples (same ``seed``).
    """
    from waekit.evaluate.fid import inception_available
    from waekit.evaluate.run import METRICS_JSON, evaluate_run
    from waekit.io import atomic_write_bytes, atomic_write_text
    from waekit.report.html import load_metrics
    from waekit.run import load_run

    dirs = expand_run_dirs(list(run_dirs))
    out = Path(out_dir) if out_dir is not None else default_out_dir(dirs)
    names = _names(dirs)
    results: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    notes: list[str] = []
    grids: list[bytes] = []
    for name, d in zip(names, dirs, strict=True):
        result = load_metrics(d)  # first, so that a damaged file stops before any work
        run = load_run(d, device=device)
        if result is None and evaluate_missing:
            # FID needs minutes of Inception per run on a CPU: by default only on a GPU.
            use_fid = (
                (inception_available()[0] and run.device.type == "cuda") if fid is None else fid
            )
            result = evaluate_run(d, device=device, seed=seed, fid=use_fid)
            notes.append(
                f"{name}: measured now ({result['n']:,} test images, seed {seed}, FID "
                + ("included" if use_fid else f"left out: `{evaluate_hint(d)}` adds it")
                + f"); saved to {d / METRICS_JSON}."
            )
        elif result is None:
            notes.append(f"{name}: not measured yet; `{evaluate_hint(d)}` measures it.")
        results.append(result or {"metrics": {}, "skipped": {}, "data": {}, "model": {}})
        configs.append({**run.config.to_dict(), "trained_by": trained_by(d)})
        grids.append(_sample_grid(run, seed, samples))

    groups = group_runs(configs)
    group_names = _group_names(groups, dirs, names)
    rows = _metric_rows(results, configs, groups)
    several = any(len(g) > 1 for g in groups)
    metric_header = ["metric", "better"] + [
        f"{g} (n = {len(m)})" if len(m) > 1 else g for g, m in zip(group_names, groups, strict=True)
    ]
    group_of = {i: group_names[k] for k, members in enumerate(groups) for i in members}

    run_header = ["run", "group", "model", "cost", "data", "d", "images", "train.seed"]
    run_rows = []
    for i, (name, r) in enumerate(zip(names, results, strict=True)):
        cfg = configs[i]
        data = r.get("data") or {}
        run_rows.append(
            [
                name,
                group_of[i],
                str(cfg["model"]["name"]),
                cost_label(cfg["model"]),
                f"{data.get('name', cfg['data']['name'])} {data.get('split', '')}".strip(),
                str(cfg["model"]["latent_dim"]),
                format_value(r.get("n")),
                str(cfg["train"]["seed"]),
            ]
        )

    differ = differing_keys([configs[g[0]] for g in groups]) if len(groups) > 1 else []
    flat_first = [_flat(configs[g[0]]) for g in groups]
    differ_rows = [[k] + [_short(f.get(k, "(absent)")) for f in flat_first] for k in differ]
    grouping = _grouping_line(groups, group_names, configs, differ)
    protocol = _protocol_line(results)

    # -- Markdown, grids as files beside it ---------------------------------------------------
    md = ["# Run comparison", "", grouping, ""]
    md += _markdown_table(metric_header, [r.line() for r in rows], 2)
    md += ["", protocol, ""]
    md += [f"- {n}" for n in notes]
    if differ_rows:
        md += ["", "## How the groups differ", ""]
        md += _markdown_table(["config key"] + group_names, differ_rows, len(groups) + 1)
    if several:
        md += ["", "## Each run", ""]
        per_run = _metric_rows(results, configs, [[i] for i in range(len(dirs))])
        md += _markdown_table(["metric", "better"] + names, [r.line() for r in per_run], 2)
    md += ["", "## Runs", ""]
    md += _markdown_table(run_header, run_rows, 5)
    md += ["", "## Random samples", ""]
    for i, (name, png) in enumerate(zip(names, grids, strict=True)):
        file = f"samples-{i + 1}.png"
        atomic_write_bytes(out / file, png)
        md += [f"### {name}", "", f"![{name} samples]({file})", ""]
    md_path = atomic_write_text(out / "comparison.md", "\n".join(md))

    # -- HTML, self-contained -----------------------------------------------------------------
    parts = [
        "<h1>Run comparison</h1>",
        f'<p class="muted">{html.escape(grouping)}</p>',
        _html_table("comparison", metric_header, [r.line() for r in rows], 2),
        f'<p class="muted">{html.escape(protocol)}</p>',
        "".join(f'<p class="info">{html.escape(n)}</p>' for n in notes),
    ]
    if differ_rows:
        parts += [
            "<h2>How the groups differ</h2>",
            _html_table("differences", ["config key"] + group_names, differ_rows, len(groups) + 1),
        ]
    if several:
        per_run = _metric_rows(results, configs, [[i] for i in range(len(dirs))])
        parts += [
            "<h2>Each run</h2>",
            _html_table("per-run", ["metric", "better"] + names, [r.line() for r in per_run], 2),
        ]
    parts += ["<h2>Runs</h2>", _html_table("runs", run_header, run_rows, 5)]
    figures = "".join(
        f'<figure><img src="{data_uri(png)}" alt="{html.escape(name)} samples">'
        f"<figcaption>{html.escape(name)}: {samples} random samples (seed {seed})</figcaption>"
        "</figure>"
        for name, png in zip(names, grids, strict=True)
    )
    parts.append(f'<h2>Random samples</h2><div class="row">{figures}</div>')
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>waekit: run comparison</title><style>{CSS}{_WIDE_CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>\n"
    )
    html_path = atomic_write_text(out / "comparison.html", page)
    return md_path, html_path


def _short(value: Any, limit: int = 60) -> str:
    from waekit.errors import brief

    text = str(value) if isinstance(value, (str, int, float, bool)) or value is None else None
    if text is None:
        text = brief(value, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _grouping_line(
    groups: list[list[int]],
    group_names: list[str],
    configs: list[dict[str, Any]],
    differ: list[str],
) -> str:
    """One sentence: how many runs, how grouped, what differs."""
    n = sum(len(g) for g in groups)
    seeds = [
        sorted(str(configs[i]["train"]["seed"]) for i in members)
        for members in groups
        if len(members) > 1
    ]
    text = f"{n} run{'s' if n != 1 else ''} in {len(groups)} group{'s' if len(groups) != 1 else ''}"
    text += " (runs whose configs differ only in train.seed form one group"
    text += "; a cell is the mean ± sample standard deviation over the group's runs, n of them)"
    if seeds:
        text += "; seeds " + "; ".join(", ".join(s) for s in seeds)
    if differ:
        shown = ", ".join(differ[:8]) + (f" and {len(differ) - 8} more" if len(differ) > 8 else "")
        text += f". The groups differ in {shown}"
    return text + "."


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
