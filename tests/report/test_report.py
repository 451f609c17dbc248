import io
import json

import numpy as np
import pytest
from PIL import Image
from report_pages import decode_png, parse
from waekit_testruns import make_run

from waekit.evaluate.fid import inception_available
from waekit.report import compare_runs, plots, write_report
from waekit.report.html import format_value

pytestmark = pytest.mark.usefixtures("use_npz_loader")


def test_report_is_self_contained_with_the_numbers(evaluated_run):
    run_dir, metrics = evaluated_run
    page = parse(run_dir / "report.html")
    # Scripts (the latent explorer's) are inline: nothing is fetched from anywhere.
    assert page.external == [] and "link" not in page.tags
    # curves, samples, reconstructions, interpolations, scatter, box plots, histograms,
    # and the explorer's two sliders (d = 2) and its 9 x 9 grid of 28-px tiles
    assert len(page.images) == 10
    assert (9 * 29 + 1, 9 * 29 + 1) in [decode_png(uri).size for uri in page.images]
    sizes = [decode_png(uri).size for uri in page.images]
    # 64 samples of 28x28 in 8 rows of 8 with 2-px padding: 8 * 30 + 2 = 242 px square
    assert (242, 242) in sizes
    # 32 reconstructions: 4 pairs of rows (real, reconstructed) of 8
    assert (242, 8 * 30 + 2) in sizes
    # 8 interpolation rows of 10 steps framed by the two real images
    assert (12 * 30 + 2, 8 * 30 + 2) in sizes
    text = " ".join(page.cells)
    for name in ("recon_mse", "sharpness_test", "mmd2_codes_prior", "ot_codes_prior"):
        assert format_value(metrics["metrics"][name]["value"]) in page.cells
    if inception_available()[0]:
        fid_cell = page.cells[page.cells.index("FID, prior samples") + 1]
        assert fid_cell == format_value(metrics["metrics"]["fid_samples"]["value"])
        assert "tf-2015-12-05" in text
    html = (run_dir / "report.html").read_text()
    assert "latent_dim: 2" in html and "Run config" in html
    assert "Measured while writing this report" not in html


def test_report_evaluates_a_run_without_metrics(tmp_path):
    run_dir = make_run(tmp_path, "vae", "vae", net="mlp", mlp_hidden=(32,))
    # fid=None, the CLI's default: on a CPU FID is left out (minutes of Inception), even
    # where the network is installed; `waekit evaluate` adds it
    path = write_report(run_dir, device="cpu", n=12)
    assert path == run_dir / "report.html"
    html = path.read_text()
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["n"] == 12 and saved["skipped"]["fid"] == "disabled (fid=False)"
    # The normal path after `waekit train` on a CPU: a neutral line, not a warning.
    hint = f"waekit evaluate {run_dir}"
    banner = (
        '<p class="info">Measured while writing this report: 12 test images, seed 0, FID left '
        f"out; saved to {run_dir / 'metrics.json'}. <code>{hint}</code> measures again"
    )
    assert banner in html and "absent" not in html and 'class="note"' not in html
    # The FID row says which command computes it, for this very run folder.
    page = parse(path)
    fid = page.cells.index("FID (samples, reconstructions, GMM samples)")
    assert page.cells[fid + 1] == "not measured"
    assert page.cells[fid + 5].endswith(f"; {hint} computes it")
    mse = page.cells.index("Reconstruction MSE per pixel")
    assert page.cells[mse + 2] == "lower"  # which way is better, beside the value
    assert "IW bound on log p(x), nats" in html
    assert all(decode_png(uri) for uri in parse(path).images)


def test_compare_runs_labels_the_costs(evaluated_run, tmp_path):
    run_a, metrics_a = evaluated_run
    run_b = make_run(tmp_path, "vae-mlp", "vae", net="mlp", mlp_hidden=(32,))
    md, page = compare_runs([run_a, run_b], tmp_path / "cmp", device="cpu", fid=False)
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0] == "| metric | better | wae-small | vae-mlp |"

    def row(label):
        line = next(r for r in rows if r.startswith(f"| {label} |"))
        return [c.strip() for c in line.strip("|").split("|")][2:]

    assert row("Reconstruction MSE per pixel") == [
        format_value(metrics_a["metrics"]["recon_mse"]["value"]),
        format_value(
            json.loads((run_b / "metrics.json").read_text())["metrics"]["recon_mse"]["value"]
        ),
    ]
    # An L2 cost and a Bernoulli cost: two labelled rows, never one column.
    l2 = row("Reconstruction cost per image [1 × squared L2]")
    bce = row("Reconstruction cost per image [Bernoulli cross-entropy]")
    assert l2[0] == format_value(metrics_a["metrics"]["recon_cost"]["value"]) and l2[1] == "n/a"
    assert bce[0] == "n/a" and float(bce[1]) > 0
    iw = row("IW bound on log p(x), nats")
    assert iw[0] == "n/a" and float(iw[1]) < 0
    assert row("Sharpness, real test images")[0] == format_value(
        metrics_a["metrics"]["sharpness_test"]["value"]
    )
    assert "different n (16, 40)" in text
    assert (
        f"vae-mlp: measured now (40 test images, seed 0, FID left out: `waekit evaluate "
        f"{run_b}` adds it); saved to {run_b}"
    ) in text
    assert "2 runs in 2 groups" in text and "model.name" in text
    for i in (1, 2):
        assert Image.open(tmp_path / "cmp" / f"samples-{i}.png").size == (242, 242)
        assert f"](samples-{i}.png)" in text
    parsed = parse(page)
    assert parsed.external == [] and len(parsed.images) == 2
    assert [decode_png(uri).size for uri in parsed.images] == [(242, 242)] * 2


# -- plots -----------------------------------------------------------------------------------
def _png(data):
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image.convert("L"))


def test_training_curve_series_and_png():
    records = [
        {"kind": "train", "step": 1, "loss": 4.0, "mmd": -0.1, "lr": 1e-3, "note": "x"},
        {"kind": "train", "step": 2, "loss": 2.0, "mmd": 0.2, "lr": 1e-3},
        {"kind": "eval", "step": 2, "holdout_loss": 3.0},
    ]
    series = plots._series(records, "train")
    assert sorted(series) == ["loss", "lr", "mmd"]
    np.testing.assert_array_equal(series["loss"][0], [1.0, 2.0])
    np.testing.assert_array_equal(series["mmd"][1], [-0.1, 0.2])
    pixels = _png(plots.training_curves(records))
    assert pixels.std() > 10  # drawn, not blank
    assert plots.training_curves([]) is None


@pytest.mark.parametrize("d", [1, 2, 5, 20])
def test_code_figures_for_any_latent_size(d):
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(300, d))
    labels = rng.integers(0, 4, 300)
    for data in (
        plots.code_scatter(codes, labels),
        plots.code_scatter(codes),
        plots.latent_boxplots(codes, labels),
        plots.latent_boxplots(codes),
        plots.marginal_histograms(codes, prior_var=2.0),
    ):
        assert _png(data).std() > 10


def test_per_dimension_figures_stop_at_max_panels():
    rng = np.random.default_rng(0)
    sixteen = _png(plots.marginal_histograms(rng.normal(size=(50, 16))))
    forty = _png(plots.marginal_histograms(rng.normal(size=(50, 40))))
    eight = _png(plots.marginal_histograms(rng.normal(size=(50, 8))))
    assert plots.MAX_PANELS == 16
    assert forty.shape == sixteen.shape  # 4 x 4 panels either way
    assert eight.shape[0] < sixteen.shape[0]  # 2 rows instead of 4


def test_every_metric_of_an_evaluation_has_a_display_label(evaluated_run):
    from waekit.report.html import METRIC_LABELS

    _, metrics = evaluated_run
    assert sorted(set(metrics["metrics"]) - set(METRIC_LABELS)) == []
