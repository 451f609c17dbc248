"""Reports: image grids, plots, a self-contained HTML page per run, side-by-side comparisons."""

from waekit.report.compare import compare_runs
from waekit.report.grids import image_grid, interpolation_grid, reconstruction_grid, save_png
from waekit.report.html import write_report

__all__ = [
    "compare_runs",
    "image_grid",
    "interpolation_grid",
    "reconstruction_grid",
    "save_png",
    "write_report",
]
