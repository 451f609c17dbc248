"""``waekit data ...``: list, download, prepare and verify the data sets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from waekit.data.datasets import (
    data_root,
    download_dataset,
    list_datasets,
    prepare_dataset,
    verify_dataset,
)
from waekit.errors import WaekitError

__all__ = ["data_app"]

data_app = typer.Typer(
    help="List, download, prepare (fast cache) and verify the image data sets.",
    no_args_is_help=True,
)

RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Data root (default: $WAEKIT_DATA, else ~/.cache/waekit/data).",
        file_okay=False,
    ),
]
SizeOption = Annotated[
    int | None,
    typer.Option(
        "--image-size", min=1, help="Output side in pixels (default: the data set's own)."
    ),
]
NameArgument = Annotated[str, typer.Argument(help="Data set name (see `waekit data list`).")]


def _fail(exc: WaekitError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=1)


class _Stderr(logging.Handler):
    """Log lines to whatever ``sys.stderr`` is when they are written (not when set up)."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(self.format(record), err=True)


def _progress_to_stderr() -> None:
    logger = logging.getLogger("waekit.data")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        logger.addHandler(_Stderr())
    logger.setLevel(logging.INFO)


@data_app.command("list")
def list_command(root: RootOption = None) -> None:
    """Show every data set, its splits and files, and whether they are present."""
    try:
        infos = list_datasets(root)
    except WaekitError as exc:
        raise _fail(exc) from None
    typer.echo(f"data root: {data_root(root)}")
    for info in infos:
        if info.folder is None:
            use = f"--set data.name={info.name} --set data.path={info.path_kind}"
            state = f"your own files: `waekit train {use}`"
        elif info.present:
            state = f"present in {info.found_in}"
        else:
            get = f": `waekit data download {info.name} --root {data_root(root)}`"
            state = "missing" + (f" (downloadable){get}" if info.downloadable else "")
        typer.echo(f"\n{info.name:<14} {info.description}")
        typer.echo(f"  splits:   {', '.join(info.splits)}")
        typer.echo(f"  status:   {state}")
        if info.files and not info.present:
            typer.echo(f"  expected: {', '.join(info.files)} in {info.folder}")
        if info.prepared:
            typer.echo(f"  prepared: {', '.join(info.prepared)}")


@data_app.command("download")
def download_command(name: NameArgument, root: RootOption = None) -> None:
    """Download the official files (md5-checked) that are not there yet."""
    _progress_to_stderr()
    try:
        paths = download_dataset(name, root)
    except WaekitError as exc:
        raise _fail(exc) from None
    for p in paths:
        typer.echo(str(p))


@data_app.command("prepare")
def prepare_command(
    name: NameArgument, root: RootOption = None, image_size: SizeOption = None
) -> None:
    """Write the fast cache (one uint8 .npy per split) that later loads map in seconds."""
    _progress_to_stderr()
    try:
        paths = prepare_dataset(name, root, image_size=image_size)
    except WaekitError as exc:
        raise _fail(exc) from None
    for p in paths:
        typer.echo(str(p))


PathOption = Annotated[
    Path | None,
    typer.Option("--path", help="Your folder of images or .npz file (data sets folder, npz)."),
]


@data_app.command("verify")
def verify_command(
    name: NameArgument,
    root: RootOption = None,
    path: PathOption = None,
    image_size: SizeOption = None,
) -> None:
    """Read every file of a data set; print the images per split and per class."""
    try:
        report = verify_dataset(name, root, path=path, image_size=image_size)
    except WaekitError as exc:
        raise _fail(exc) from None
    classes = report["class_names"]
    typer.echo(f"{report['name']} in {report['folder']}")
    for split, info in report["splits"].items():
        shape = "x".join(str(d) for d in info["shape"])
        typer.echo(
            f"  {split:<6} {info['count']:>8,} images  {shape}  mean pixel {info['pixel_mean']:.2f}"
        )
        for label, count in info.get("classes", {}).items():
            named = classes and label < len(classes) and classes[label] != str(label)
            label_name = f" {classes[label]}" if named else ""
            typer.echo(f"           class {label}{label_name}: {count:,}")
    for path, status in report["checksums"].items():
        typer.echo(f"  md5 {Path(path).name}: {status}")
    for warning in report["warnings"]:
        typer.echo(f"  warning: {warning}")
    typer.echo("ok")
