"""The report as a browser shows it: headless Chromium renders RUN_DIR/report.html."""

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_pages import decode_png, parse
from test_explorer import report_explorer

from waekit.report import compare_runs
from waekit.report.html import METRIC_LABELS, format_value

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)"
)


def chromium(tmp_path, *args):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    done = subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_renders_with_metrics_and_images(evaluated_run, tmp_path):
    run_dir, metrics = evaluated_run
    url = (run_dir / "report.html").as_uri()

    dom = chromium(tmp_path, "--dump-dom", url)
    page = parse(dom)
    assert 'id="metrics"' in dom
    assert "Sharpness, real test images" in page.cells
    for name, entry in metrics["metrics"].items():  # every metric, label then value
        label = page.cells.index(METRIC_LABELS[name])
        assert page.cells[label + 1] == format_value(entry["value"])
    # no broken images: every <img> is an inline PNG that decodes
    assert len(page.images) == 10  # 7 figures, 2 explorer sliders, the explorer's grid
    sizes = [decode_png(src).size for src in page.images]
    assert sorted(w for w, _ in sizes)[:2] == [28, 28]  # the sliders' images
    assert all(w > 100 for w, _ in sorted(sizes)[2:])
    assert page.external == []

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", url)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (3000, 1200)
    assert pixels.std() > 20  # not a blank page
    dark = (pixels < 128).mean()
    assert 0.01 < dark < 0.6  # text, tables and figures on a light page


def _measure(tmp_path, page, script, width=1400):
    """Render a copy of ``page`` in a ``width`` px window with ``script`` appended; the
    script's JSON result, which it writes into <pre id="result">, comes back parsed."""
    copy = tmp_path / f"measured-{page.name}"
    text = page.read_text()
    probe = (
        f'<pre id="result"></pre><script>document.getElementById("result").textContent = '
        f"JSON.stringify((() => {{ {script} }})());</script>"
    )
    copy.write_text(text.replace("</body>", probe + "</body>"))
    dom = chromium(tmp_path, f"--window-size={width},1000", "--dump-dom", copy.as_uri())
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert match and match[1], dom[-2000:]
    return json.loads(html.unescape(match[1]))


def test_comparison_fits_a_1400_px_window(evaluated_run, seed_runs, tmp_path):
    run_dir, _ = evaluated_run
    runs = [run_dir, *sorted(seed_runs.glob("*/seed-*"))]  # 3 groups, 6 runs
    _, page = compare_runs(runs, tmp_path / "cmp", device="cpu", fid=False)
    got = _measure(
        tmp_path,
        page,
        """const tables = [...document.querySelectorAll("table")].map(t => ({
               id: t.id, width: t.scrollWidth, room: t.parentElement.clientWidth}));
           return {page: document.documentElement.scrollWidth,
                   window: window.innerWidth, tables};""",
    )
    assert got["window"] == 1400
    assert got["page"] <= 1400  # no horizontal scroll bar on the page
    assert {t["id"] for t in got["tables"]} == {"comparison", "differences", "per-run", "runs"}
    for table in got["tables"]:  # and none inside a table's own scroll box
        assert table["width"] <= table["room"], table


def test_explorer_slider_shows_the_precomputed_image(evaluated_run, tmp_path):
    run_dir, _ = evaluated_run
    data = report_explorer(run_dir)
    got = _measure(
        tmp_path,
        run_dir / "report.html",
        """const root = document.getElementById("explorer");
           const slider = root.querySelector('input[data-axis="1"]');
           const card = slider.closest(".axis"), img = card.querySelector("img");
           const before = img.src;
           slider.value = "0";
           slider.dispatchEvent(new Event("input", {bubbles: true}));
           const moved = img.src, label = card.querySelector("output").textContent;
           const base = root.querySelector("select");
           base.value = "2";
           base.dispatchEvent(new Event("change", {bubbles: true}));
           return {before, moved, label, rebased: img.src, shown: img.naturalWidth};""",
    )
    mid = len(data["offsets"][1]) // 2
    assert got["before"] == data["images"][0][1][mid]  # the base point, z = 0
    assert got["moved"] == data["images"][0][1][0]  # z2 at -3 sd
    assert got["label"] == data["offsets"][1][0] == "-3.00"
    assert got["rebased"] == data["images"][2][1][0]  # same slider, second test code
    # The three images differ, so the page really shows a different picture each time.
    pixels = [np.asarray(decode_png(got[k]), dtype=np.int16) for k in ("before", "moved")]
    assert np.abs(pixels[0] - pixels[1]).max() > 10
    assert got["moved"] != got["rebased"]
