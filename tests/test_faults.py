"""Fault injection on a tiny run: SIGKILL at random points (mid-checkpoint included) then
--resume ends with the same weights as a run never stopped; every kind of damage to a file of a
run folder ends in one line with a fix, exit code 1, and no file changed; generated garbage
configs and metrics lines never end in a traceback."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from blobs import blobs
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from waekit import io as wio
from waekit.cli import main

SEED = 20261125
STEPS = 20
TIMING_KEYS = {"images_per_s"}


# -- a tiny run --------------------------------------------------------------------------------
def _write_config(folder: Path, steps: int = STEPS) -> Path:
    b = blobs(80)
    np.savez(folder / "blobs.npz", images=b.images, labels=b.labels)
    cfg = {
        "model": {"name": "wae-mmd", "net": "mlp", "latent_dim": 2, "mlp_hidden": [16]},
        "data": {"name": "npz", "path": str(folder / "blobs.npz")},
        "train": {
            "steps": steps,
            "batch_size": 10,
            "log_every": 2,
            "image_every": 10,
            "checkpoint_every": 2,
            "holdout": 10,
            "seed": 3,
        },
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cli(capsys, *args: str) -> tuple[int, str]:
    """The CLI in this process; returns (exit code, stderr). A traceback fails the test."""
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread here and in the subprocesses: the same reductions in both (exact
    comparison), and no oversubscription of a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """(config file, run folder) of a run never stopped."""
    folder = tmp_path_factory.mktemp("reference")
    cfg = _write_config(folder)
    run = folder / "run"
    assert (
        main(["train", "--config", str(cfg), "--out", str(run), "--no-progress", "--no-report"])
        == 0
    )
    return cfg, run


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _same_tensors(a: Path, b: Path) -> bool:
    ta, tb = _tensors(a), _tensors(b)
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def _records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING_KEYS} for x in lines]


def _temporaries(run: Path) -> list[Path]:
    return [p for p in run.rglob(f"*{wio.TMP_SUFFIX}")]


def _fingerprint(run: Path) -> dict[str, str]:
    """sha256 of every file of the run folder but TensorBoard's (a new events file per start)."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file() and "tb" not in p.relative_to(run).parts
    }


# -- SIGKILL, then --resume ----------------------------------------------------------------------
# Runs `python -m waekit` with os.replace wrapped so that the K-th rename kills the process:
# every file of a checkpoint is written by a rename, so K picks a point inside a checkpoint
# (after some of its files are renamed and with the next one complete in its temporary).
KILL_AT_RENAME = """
import os, runpy, signal, sys
k, calls, rename = int(sys.argv[1]), [0], os.replace
def replace(*args, **kwargs):
    calls[0] += 1
    if calls[0] == k:
        os.kill(os.getpid(), signal.SIGKILL)
    return rename(*args, **kwargs)
os.replace = replace
sys.argv = ["waekit"] + sys.argv[2:]
runpy.run_module("waekit", run_name="__main__", alter_sys=True)
"""


def _train_args(run: Path, cfg: Path | None) -> list[str]:
    head = ["train", "--config", str(cfg)] if cfg else ["train", "--resume"]
    return [*head, "--out", str(run), "--no-progress", "--no-report"]


def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_weights(
    reference, tmp_path, capsys
):
    rng = np.random.default_rng(SEED)
    cfg_ref, ref = reference
    cfg = _write_config(tmp_path)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}

    # 1. A real `python -m waekit train`, killed from outside once metrics.jsonl holds a
    #    random number of records (at most step 6 of 20).
    proc = subprocess.Popen(
        [sys.executable, "-m", "waekit", *_train_args(run, cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    lines, deadline = int(rng.integers(1, 7)), time.time() + 120
    metrics = run / "metrics.jsonl"
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        if metrics.is_file() and metrics.read_bytes().count(b"\n") >= lines:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    # 2. Resumed, and killed again at a random rename: inside a checkpoint.
    k = int(rng.integers(3, 20))
    resumed = subprocess.run(
        [sys.executable, "-c", KILL_AT_RENAME, str(k), *_train_args(run, None)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in resumed.stderr, resumed.stderr
    assert [proc.returncode, resumed.returncode] == [-signal.SIGKILL] * 2
    stale = _temporaries(run)
    assert stale, "the last kill was before a rename: a complete temporary is left"

    # 3. The last --resume finishes the run, removes the killed writers' temporaries, and
    #    ends where the uninterrupted run ended: weights, optimiser moments, RNG, records.
    code, err = _cli(capsys, *_train_args(run, None))
    assert code == 0, err
    assert _temporaries(run) == []
    assert _same_tensors(run / "model.safetensors", ref / "model.safetensors")
    assert _same_tensors(
        run / "checkpoints" / "last.safetensors", ref / "checkpoints" / "last.safetensors"
    )
    assert _records(run) == _records(ref)
    assert (run / "config.yaml").read_text().replace(str(tmp_path), "") == (
        ref / "config.yaml"
    ).read_text().replace(str(cfg_ref.parent), "")


@pytest.mark.parametrize("case", range(2))
def test_disk_full_during_a_checkpoint_leaves_a_resumable_run(
    reference, tmp_path, capsys, monkeypatch, case
):
    """ENOSPC at a random fsync of a file: one line naming the file, no temporary left, every
    checkpoint file still whole, and --resume (once space is back) ends as if never stopped."""
    rng = np.random.default_rng([SEED, 20 + case])
    cfg = _write_config(tmp_path)
    run = tmp_path / "run"
    k, calls, fsync = int(rng.integers(4, 30)), [0], os.fsync

    def full(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            calls[0] += 1
            if calls[0] == k:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    code, err = _cli(capsys, *_train_args(run, cfg))
    monkeypatch.undo()
    # The trainer's opening line (steps, precision) may come first; the failure is one line.
    assert code == 1 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n"), err
    written = re.fullmatch(
        r"error: no space left on the device \(or over quota\) while writing (\S+); free "
        r"some space \(see: df -h (\S+)\) and run the command again",
        errors[0],
    )
    assert written, err
    assert Path(written[1]).parent == Path(written[2]) and run in Path(written[1]).parents
    assert _temporaries(run) == []
    for path in run.rglob("*.safetensors"):
        wio.load_tensors(path)  # whole: the old version or the new, never a part
    if not (run / "checkpoints" / "last.safetensors").is_file():  # failed before the first
        code, err = _cli(capsys, *_train_args(run, None))
        assert code == 1 and "start without --resume" in err, err
        shutil.rmtree(run)
        code, err = _cli(capsys, *_train_args(run, cfg))
    else:
        code, err = _cli(capsys, *_train_args(run, None))
    assert code == 0, err
    ref = reference[1]
    assert _same_tensors(run / "model.safetensors", ref / "model.safetensors")
    assert _same_tensors(
        run / "checkpoints" / "last.safetensors", ref / "checkpoints" / "last.safetensors"
    )


# -- damaged files -------------------------------------------------------------------------------
def _run_copy(reference, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(reference[1], run)
    return run


def _first_float(tensors: dict[str, torch.Tensor]) -> str:
    return sorted(k for k, v in tensors.items() if v.is_floating_point() and v.numel())[0]


def _damage(path: Path, kind: str, rng: np.random.Generator) -> str:
    """Damage ``path`` in place; returns the message part that names the damage."""
    data = path.read_bytes()
    (n,) = np.frombuffer(data[:8], "<u8")
    if kind == "truncated":
        cut = int(rng.integers(1, len(data)))
        path.write_bytes(data[:cut])
        return "is truncated or corrupt ("
    if kind == "bit-flipped":  # one bit of the tensor data: the checksum catches it
        bit = int(rng.integers(8 * (8 + int(n)), 8 * len(data)))
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        return "fails its checksum: its bytes changed after it was written"
    infos, meta = wio.read_header(path)
    tensors = _tensors(path)
    if kind == "nan-filled":  # a well-formed file (valid checksum) with NaN weights
        name = _first_float(tensors)
        tensors[name] = torch.full_like(tensors[name], float("nan"))
        meta.pop(wio.CHECKSUM_KEY)
        wio.save_tensors(tensors, path, meta)
        return f"holds {tensors[name].numel()} NaN or infinite values in tensor '{name}'"
    assert kind == "metadata-garbage"
    key = "waekit_model" if "waekit_model" in meta else "optimizers"
    meta[key] = '{"oops": [1, 2'
    meta.pop(wio.CHECKSUM_KEY)
    wio.save_tensors(tensors, path, meta)
    if key == "waekit_model":
        return "has corrupt model metadata ("
    return "has corrupt checkpoint metadata: optimizers '{\"oops\": [1, 2' (expected name -> state)"


KINDS = ["truncated", "bit-flipped", "nan-filled", "metadata-garbage"]


def _one_line_error(code: int, err: str, path: Path, what: str, hint: str) -> None:
    assert code == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {path} {what}"), err
    assert err.rstrip("\n").endswith(hint), err


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_model_file(reference, tmp_path, capsys, kind):
    rng = np.random.default_rng([SEED, KINDS.index(kind)])
    run = _run_copy(reference, tmp_path)
    model = run / "model.safetensors"
    what = _damage(model, kind, rng)
    best = run / "checkpoints" / "best-model.safetensors"
    hint = (
        f"copy the best model over it (cp {best} {model}) or retrain: waekit train --config "
        f"{run / 'config.yaml'} --out {run}-new"
    )
    before = _fingerprint(run)
    for command in (
        ["sample", str(run), "-n", "4"],
        ["reconstruct", str(run), "-n", "4"],
        ["evaluate", str(run), "--no-fid", "-n", "20"],
        ["report", str(run)],
    ):
        code, err = _cli(capsys, *command)
        _one_line_error(code, err, model, what, hint)
        assert _fingerprint(run) == before, command
    # The hint works as printed.
    cp = re.search(r"\(cp (\S+) (\S+)\)", err)
    subprocess.run(["cp", cp[1], cp[2]], check=True)
    code, err = _cli(capsys, "sample", str(run), "-n", "4", "--out", str(tmp_path / "s.npz"))
    assert code == 0 and np.load(tmp_path / "s.npz")["images"].shape == (4, 1, 12, 12), err


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_last_checkpoint_on_resume(reference, tmp_path, capsys, kind):
    rng = np.random.default_rng([SEED, 10 + KINDS.index(kind)])
    run = _run_copy(reference, tmp_path)
    last = run / "checkpoints" / "last.safetensors"
    what = _damage(last, kind, rng)
    best = run / "checkpoints" / "best.safetensors"
    hint = (
        f"resume from the best checkpoint instead (cp {best} {last}, then waekit train --out "
        f"{run} --resume) or retrain: waekit train --config {run / 'config.yaml'} --out {run}-new"
    )
    before = _fingerprint(run)
    longer = ("--set", f"train.steps={STEPS + 4}")
    code, err = _cli(capsys, *_train_args(run, None), *longer)
    _one_line_error(code, err, last, what, hint)
    assert _fingerprint(run) == before
    assert _temporaries(run) == []
    # The hint works as printed: back to the best state, then on to the end.
    subprocess.run(["cp", str(best), str(last)], check=True)
    code, err = _cli(capsys, *_train_args(run, None))
    assert code == 0, err
    assert wio.load_tensors(last)[1]["step"] == STEPS


CONFIG_GARBAGE = {
    "not-yaml": ("model: {name: [", "is not valid YAML"),
    "a-list": ("- 1\n- 2\n", "must hold a mapping of sections"),
    "unknown-key": ("model: {name: wae-mmd, lamda: 3}\n", "unknown key model.lamda"),
    "wrong-type": ("train: {batch_size: ten}\n", "train.batch_size='ten' has the wrong type"),
    "binary": ("\x00\x01\x02\xff", "config"),
}


def _config_refused(capsys, run: Path, command: list[str], expected: str) -> None:
    before = _fingerprint(run)
    code, err = _cli(capsys, *command)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: "), (command, err)
    assert "config.yaml" in err and expected in err, (command, err)
    assert _fingerprint(run) == before, command


@pytest.mark.parametrize("kind", sorted(CONFIG_GARBAGE))
def test_damaged_config_file(reference, tmp_path, capsys, kind):
    run = _run_copy(reference, tmp_path)
    text, expected = CONFIG_GARBAGE[kind]
    (run / "config.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))
    for command in (
        ["sample", str(run), "-n", "4"],
        ["evaluate", str(run), "--no-fid", "-n", "20"],
        ["report", str(run)],
    ):
        _config_refused(capsys, run, command, expected)


@pytest.mark.parametrize("kind", sorted(CONFIG_GARBAGE))
def test_damaged_config_file_on_resume(reference, tmp_path, capsys, kind):
    run = _run_copy(reference, tmp_path)
    text, expected = CONFIG_GARBAGE[kind]
    (run / "config.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))
    _config_refused(capsys, run, _train_args(run, None), expected)


def test_a_config_alias_bomb_is_refused_in_one_short_line(reference, tmp_path, capsys):
    run = _run_copy(reference, tmp_path)
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    ]
    (run / "config.yaml").write_text("\n".join(levels) + "\nmodel: {name: *h}\n")
    t0 = time.perf_counter()
    code, err = _cli(capsys, "sample", str(run), "-n", "4")
    assert time.perf_counter() - t0 < 5
    assert code == 1 and err.count("\n") == 1 and len(err) < 600, err[:600]


METRICS_GARBAGE = [
    "{not json",
    "[1, 2, 3]",
    "3",
    '"text"',
    "null",
    '{"kind": "train", "step": "two", "loss": "x"}',
    '{"kind": "train"}',
    '{"step": 1e400}',
    "\x00\x01garbage",
]


def _insert_garbage(run: Path, lines: list[str]) -> None:
    path = run / "metrics.jsonl"
    good = path.read_text().splitlines()
    mixed = good[:3] + lines + good[3:]
    path.write_bytes(("\n".join(mixed) + "\n").encode("utf-8", "surrogateescape"))


def test_garbage_metrics_lines_do_not_block_report_or_resume(reference, tmp_path, capsys):
    run = _run_copy(reference, tmp_path)
    (run / "metrics.json").write_text(json.dumps({"metrics": {}, "n": 20, "seed": 0}))
    _insert_garbage(run, METRICS_GARBAGE)
    code, err = _cli(capsys, "report", str(run))
    assert code == 0 and "Traceback" not in err, err
    code, err = _cli(capsys, *_train_args(run, None), "--set", f"train.steps={STEPS + 2}")
    assert code == 0, err
    # The resumed run keeps the good records and drops the garbage ones.
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(isinstance(r, dict) and isinstance(r.get("step"), int) for r in records)
    assert [r["step"] for r in records if r["kind"] == "train"][-2:] == [STEPS, STEPS + 2]


def test_garbage_metrics_json_is_one_line_for_report(reference, tmp_path, capsys):
    run = _run_copy(reference, tmp_path)
    (run / "metrics.json").write_text("{truncated")
    before = _fingerprint(run)
    code, err = _cli(capsys, "report", str(run))
    assert code == 1 and err.count("\n") == 1 and "metrics.json" in err, err
    assert _fingerprint(run) == before


# -- generated garbage -----------------------------------------------------------------------------
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
_KEYS = {
    "model": ["name", "net", "latent_dim", "lam", "beta", "mlp_hidden", "kernel", "scales"],
    "data": ["name", "path", "image_size", "limit"],
    "train": ["steps", "epochs", "batch_size", "lr", "seed", "log_every", "holdout"],
}
_sections = st.fixed_dictionaries(
    {},
    optional={
        section: st.dictionaries(st.sampled_from(keys), _values, max_size=3)
        for section, keys in _KEYS.items()
    },
)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(config=st.one_of(_sections, st.text(max_size=40)))
def test_generated_configs_never_give_a_traceback(reference, tmp_path_factory, config):
    run = tmp_path_factory.mktemp("cfg") / "run"
    shutil.copytree(reference[1], run)
    text = config if isinstance(config, str) else yaml.safe_dump(config)
    (run / "config.yaml").write_text(text)
    code = main(["sample", str(run), "-n", "2", "--out", str(run / "s.npz")])
    assert code in (0, 1)


_record_dicts = st.fixed_dictionaries(
    {"kind": st.sampled_from(["train", "eval", "other", ""]), "step": _scalars},
    optional={"loss": _values, "holdout_loss": _values, "lr": _values},
)
_lines = st.one_of(
    st.text(max_size=30), st.builds(json.dumps, _values), st.builds(json.dumps, _record_dicts)
)


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    phases=[Phase.generate],  # no shrinking: a failure is reported as generated
    suppress_health_check=list(HealthCheck),
)
@given(lines=st.lists(_lines, max_size=4))
def test_generated_metrics_lines_are_skipped_by_every_reader(reference, tmp_path_factory, lines):
    from waekit.report import plots
    from waekit.run import read_metrics

    run = tmp_path_factory.mktemp("metrics") / "run"
    run.mkdir()
    shutil.copy(reference[1] / "metrics.jsonl", run / "metrics.jsonl")
    good = read_metrics(run)
    _insert_garbage(run, [" ".join(x.splitlines()) for x in lines])
    records = read_metrics(run)
    assert all(isinstance(r, dict) for r in records)
    assert [r for r in records if r in good] == good
    if records != good:  # a generated line was kept as a record: the curves must still draw
        plots.training_curves(records)
