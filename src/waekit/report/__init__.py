"""Reports: image grids, plots, a self-contained HTML page per run, side-by-side comparisons."""

from waekit.report.grids import image_grid, interpolation_grid, reconstruction_grid, save_png

__all__ = ["image_grid", "interpolation_grid", "reconstruction_grid", "save_png"]
