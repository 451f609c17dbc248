"""The ``waekit`` command line: thin wrappers that parse, load a config or run, call the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from waekit.errors import TrainingInterrupted, WaekitError, os_error_message

app = typer.Typer(
    help=(
        "Train and evaluate latent-regularised generative auto-encoders (VAE, beta-VAE, "
        "WAE-MMD, WAE-GAN, AAE, InfoVAE, SWAE).\n\n"
        "Start with `waekit train`: the quickstart trains WAE-MMD on MNIST (about a minute on a "
        "CPU) and writes runs/quickstart/report.html. `waekit evaluate runs/quickstart` then adds "
        "FID and the other sample metrics, and `waekit report runs/quickstart` rewrites the "
        "report with them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RunDir = Annotated[Path, typer.Argument(help="A run folder written by `waekit train`.")]
Device = Annotated[str, typer.Option(help="'auto' (CUDA when present), 'cpu' or 'cuda:N'.")]


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _out_path(out: Path | None, run_dir: Path, default: str) -> Path:
    return out if out is not None else run_dir / default


def _save_images(
    images: np.ndarray, out: Path, nrow: int, labels: np.ndarray | None = None
) -> None:
    from waekit.io import atomic_write_bytes
    from waekit.report.grids import image_grid, save_png

    if out.suffix == ".npz":
        import io

        buf = io.BytesIO()
        arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(out, buf.getvalue())
    elif out.suffix == ".png":
        save_png(image_grid(images, nrow), out)
    else:
        _fail(f"--out {str(out)!r}: use a .png (image grid) or .npz (array) file name")
    typer.echo(f"wrote {out}")


@app.command()
def train(
    preset: Annotated[
        str | None, typer.Option(help="A shipped preset; see `waekit presets`.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="A YAML config file instead of a preset.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key, e.g. --set model.lam=5 --set train.steps=100."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/PRESET).")] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its last checkpoint.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    report: Annotated[
        bool, typer.Option(help="When training ends, evaluate and write RUN_DIR/report.html.")
    ] = True,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Train once per seed, e.g. --seeds 0,1,2: one run folder per seed, "
            "OUT/seed-0, OUT/seed-1, ..., each with train.seed set (compare them with "
            "`waekit compare OUT/seed-*`)."
        ),
    ] = None,
) -> None:
    """Train a model, then evaluate it and write its report.

    With no options: the quickstart preset (WAE-MMD on MNIST, small conv net) into
    runs/quickstart."""
    out = out or Path("runs") / (preset or (config.stem if config else "quickstart"))
    overrides = list(set_ or [])
    if seeds is None:
        _train_one(preset, config, overrides, out, resume, progress, report)
        return
    seed_list = _parse_seeds(seeds)
    if any(text.strip().startswith("train.seed=") for text in overrides):
        _fail("give the seeds with --seeds or with --set train.seed=N, not both", code=2)
    runs = [out / f"seed-{seed}" for seed in seed_list]
    for seed, run_dir in zip(seed_list, runs, strict=True):
        _train_one(
            preset, config, [*overrides, f"train.seed={seed}"], run_dir, resume, progress, report
        )
    if len(runs) > 1:
        typer.echo(f"compare the seeds: waekit compare {' '.join(map(str, runs))}")


def _parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]: distinct non-negative integers."""
    from waekit.errors import brief

    parts = [p.strip() for p in text.split(",")]
    numbers = [int(p) for p in parts if p.isdecimal() and len(p) <= 18]
    if len(numbers) < len(parts) or len(set(numbers)) < len(numbers):
        _fail(
            f"--seeds {brief(text)}: give distinct non-negative integers separated by commas, "
            "e.g. --seeds 0,1,2",
            code=2,
        )
    return numbers


def _train_one(
    preset: str | None,
    config: Path | None,
    overrides: list[str],
    out: Path,
    resume: bool,
    progress: bool,
    report: bool,
) -> None:
    from waekit.config import resolve_config
    from waekit.run import stored_config
    from waekit.train import train as run_training

    # A resumed run continues with its stored config (config.yaml, else its checkpoint's).
    stored = stored_config(out) if resume and not preset and not config else None
    resolved = resolve_config(preset=preset, config_file=config, overrides=overrides, config=stored)
    run = run_training(config=resolved, out=out, resume=resume, progress=progress)
    if run is None:  # not the main process of a distributed run
        return
    typer.echo(f"run folder: {run.dir}")
    if report:
        from waekit.report import write_report

        # FID needs Inception features: minutes on a GPU, far longer on a CPU, where the
        # report skips it (run `waekit evaluate` for it).
        on_gpu = run.device.type == "cuda"
        typer.echo(f"report: {write_report(run.dir, device=str(run.device), fid=on_gpu)}")


@app.command()
def presets() -> None:
    """List the shipped presets with their model, data set and schedule."""
    from waekit.config import load_config, preset_names

    for name in preset_names():
        c = load_config(preset=name)
        length = f"{c.train.steps} steps" if c.train.steps else f"{c.train.epochs:g} epochs"
        typer.echo(
            f"{name:18s} {c.model.name:8s} net={c.model.net:5s} d={c.model.latent_dim:<3d} "
            f"data={c.data.name:8s} batch={c.train.batch_size} {length}"
        )


@app.command()
def sample(
    run_dir: RunDir,
    n: Annotated[int, typer.Option("-n", "--n", help="Number of samples.")] = 64,
    out: Annotated[
        Path | None, typer.Option(help=".png grid or .npz array (default RUN_DIR/samples.png).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the prior draws.")] = 0,
    nrow: Annotated[int, typer.Option(help="Images per grid row.")] = 8,
    device: Device = "auto",
) -> None:
    """Decode random draws from the prior."""
    from waekit.generate import sample as draw
    from waekit.run import load_run

    run = load_run(run_dir, device)
    _save_images(draw(run.model, n, seed), _out_path(out, run_dir, "samples.png"), nrow)


@app.command()
def reconstruct(
    run_dir: RunDir,
    n: Annotated[int, typer.Option("-n", "--n", help="Number of test images.")] = 32,
    out: Annotated[
        Path | None, typer.Option(help="Output .png (default RUN_DIR/reconstructions.png).")
    ] = None,
    nrow: Annotated[int, typer.Option(help="Images per grid row.")] = 8,
    device: Device = "auto",
) -> None:
    """Reconstruct test images: odd rows real, even rows their reconstructions."""
    from waekit.generate import reconstruct as recon
    from waekit.report.grids import reconstruction_grid, save_png
    from waekit.run import load_run

    run = load_run(run_dir, device)
    real = np.asarray(run.dataset().images[:n])
    path = _out_path(out, run_dir, "reconstructions.png")
    save_png(reconstruction_grid(real, recon(run.model, real), nrow), path)
    typer.echo(f"wrote {path}")


@app.command()
def interpolate(
    run_dir: RunDir,
    pairs: Annotated[int, typer.Option(help="Number of pairs of test images.")] = 8,
    steps: Annotated[int, typer.Option(help="Points per interpolation, ends included.")] = 10,
    out: Annotated[
        Path | None, typer.Option(help="Output .png (default RUN_DIR/interpolations.png).")
    ] = None,
    device: Device = "auto",
) -> None:
    """Latent interpolations between pairs of test images, one row per pair."""
    from waekit.generate import interpolate as lerp
    from waekit.run import load_run

    run = load_run(run_dir, device)
    images = np.asarray(run.dataset().images[: 2 * pairs])
    if len(images) < 2 * pairs:
        _fail(f"--pairs {pairs} needs {2 * pairs} test images, the test split has {len(images)}")
    rows = lerp(run.model, images[:pairs], images[pairs:], steps)
    _save_images(
        rows.reshape(-1, *rows.shape[2:]), _out_path(out, run_dir, "interpolations.png"), steps
    )


@app.command()
def encode(
    run_dir: RunDir,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output .npz with arrays 'codes' and 'labels' (default RUN_DIR/codes-SPLIT.npz)."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Data split to encode.")] = "test",
    device: Device = "auto",
) -> None:
    """Encode a data split to its codes (posterior means), with labels."""
    import io

    from waekit.generate import encode as codes_of
    from waekit.io import atomic_write_bytes
    from waekit.run import load_run

    out = _out_path(out, run_dir, f"codes-{split}.npz")
    if out.suffix != ".npz":
        _fail(f"--out {str(out)!r}: encode writes a .npz file, e.g. --out codes.npz")
    run = load_run(run_dir, device)
    data = run.dataset(split)
    arrays = {"codes": codes_of(run.model, np.asarray(data.images))}
    if data.labels is not None:
        arrays["labels"] = np.asarray(data.labels)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(out, buf.getvalue())
    typer.echo(
        f"wrote {out}: {arrays['codes'].shape[0]} codes of dimension {arrays['codes'].shape[1]}"
    )


@app.command()
def evaluate(
    run_dir: RunDir,
    n: Annotated[
        int | None,
        typer.Option("-n", "--n", help="Images for FID (default 10,000 on GPU, 1,000 on CPU)."),
    ] = None,
    fid: Annotated[bool, typer.Option(help="Compute FID (needs the Inception network).")] = True,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    device: Device = "auto",
    fid_sets: Annotated[
        str,
        typer.Option(
            help="Generated sets that go through Inception, comma-separated: samples, "
            "reconstructions, gmm_samples (each costs n images of Inception).",
        ),
    ] = "samples,reconstructions,gmm_samples",
) -> None:
    """Measure a run the way the papers do; writes RUN_DIR/metrics.json."""
    import warnings

    from waekit.evaluate import evaluate_run
    from waekit.evaluate.run import summary_table

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*")
        result = evaluate_run(
            run_dir,
            n=n,
            device=device,
            seed=seed,
            fid=fid,
            progress=True,
            fid_sets=[s.strip() for s in fid_sets.split(",") if s.strip()],
        )
    for text in result.get("warnings", []):
        typer.secho(f"warning: {text}", err=True, fg="yellow", bold=True)
    typer.echo(summary_table(result))
    typer.echo(f"wrote {run_dir / 'metrics.json'} (every number with its protocol)")


@app.command()
def report(run_dir: RunDir, device: Device = "auto") -> None:
    """Write RUN_DIR/report.html: metrics, curves, samples, reconstructions, latent views."""
    from waekit.report import write_report

    path = write_report(run_dir, device=device)
    typer.echo(f"wrote {path}")


@app.command()
def compare(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(help="Run folders, or folders of runs (OUT of `waekit train --seeds`)."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for comparison.md and comparison.html (default: compare/ in the "
            "folder that holds the runs)."
        ),
    ] = None,
    device: Device = "auto",
) -> None:
    """Table (Markdown and HTML) of the runs' metrics, grouped by config (mean ± sd over
    seeds), with sample grids."""
    from waekit.report import compare_runs

    md, html = compare_runs(run_dirs, out, device=device)
    typer.echo(f"wrote {md}\nwrote {html}")


def _mount_data() -> None:
    try:
        from waekit.data.cli import data_app
    except ImportError:  # pragma: no cover - the data package always ships it
        return
    app.add_typer(data_app, name="data", help="List, download, prepare and verify data sets.")


_mount_data()


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app. Expected failures (waekit's own errors, file-system faults)
    print one line and return 1 (2 for usage errors); anything else is a bug and keeps its
    traceback."""
    try:
        # Not standalone: click returns an exit code (130 for Ctrl-C) instead of exiting.
        code = app(args=argv, prog_name="waekit", standalone_mode=False)
    except TrainingInterrupted as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.YELLOW)
        return exc.exit_code
    except WaekitError as exc:
        return _report_failure(str(exc))
    except OSError as exc:  # a full disk, a read-only folder, a missing permission, ...
        return _report_failure(os_error_message(exc))
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 1
    except Exception as exc:
        # Usage errors (unknown option, missing argument) know how to show themselves.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        raise
    return code if isinstance(code, int) else 0


def _report_failure(message: str) -> int:
    # One line, whatever the message holds (an OS error can quote a multi-line value).
    typer.secho(f"error: {' '.join(message.split())}", err=True, fg=typer.colors.RED)
    return 1


if __name__ == "__main__":
    sys.exit(main())
