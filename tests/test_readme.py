"""Every fenced ``bash`` and ``python`` block of README.md runs as written, offline, on the CPU.

The blocks run in order in one fresh working directory, as a newcomer would paste them, with
the data root empty and downloads pointed at a closed local port (so the offline fallback
is what a machine without network sees). Two documented changes keep the suite fast:

- ``waekit train`` commands get ``--set train.steps=...`` appended (TRAIN_STEPS), and
- the set-up and test commands are not run here: the test checks instead that .ci/run
  runs exactly them (CI is the fresh machine that installs and tests).

A block preceded by an HTML comment ``<!-- not run: REASON -->`` is skipped (it needs
hardware or data that a test machine lacks, e.g. several GPUs or CelebA); the reason is
required.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TRAIN_STEPS = 10

_FENCE = re.compile(
    r"(?:<!--\s*not run:\s*(?P<reason>[^>]*?)\s*-->\s*\n)?```(?P<lang>\w+)\n(?P<body>.*?)```",
    re.S,
)


def readme_blocks() -> list[tuple[str, str, str | None]]:
    """(language, body, skip reason or None) of every fenced block, in order."""
    return [(m["lang"], m["body"], m["reason"]) for m in _FENCE.finditer(README.read_text())]


def _commands(body: str) -> list[str]:
    """Shell commands of a bash block: comments dropped, backslash continuations joined."""
    text = re.sub(r"\\\n\s*", " ", body)
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _ci_commands() -> str:
    return (ROOT / ".ci" / "run").read_text()


def test_readme_has_the_three_commands_of_a_newcomer():
    langs = [(lang, body) for lang, body, _ in readme_blocks()]
    bash = [c for lang, body in langs if lang == "bash" for c in _commands(body)]
    assert any(c.startswith("python3 -m pip install") for c in bash), "a set-up command"
    assert "waekit train" in bash, "the one command that runs the main job"
    assert "python3 -m pytest -q" in bash, "the test command"
    for _, body, reason in readme_blocks():
        assert reason is None or reason.strip(), f"a skipped block needs a reason: {body!r}"


def test_setup_and_test_commands_are_what_ci_runs():
    ci = _ci_commands()
    for lang, body, reason in readme_blocks():
        if lang != "bash" or reason:
            continue
        for command in _commands(body):
            if command.startswith("python3 -m pip install"):
                assert command in ci, f"CI must install as the README says: {command}"
            if command.startswith("python3 -m pytest"):
                assert command in ci, f"CI must test as the README says: {command}"


def _env(tmp_path: Path) -> dict[str, str]:
    empty = tmp_path / "no-data"
    empty.mkdir(exist_ok=True)
    return {
        **os.environ,
        "WAEKIT_DATA": str(empty),
        # A closed local port: every download fails at once, as on a machine offline.
        "WAEKIT_DATA_MIRROR": "http://127.0.0.1:9/",
        "PYTHONUNBUFFERED": "1",
    }


def _run_shell(command: str, cwd: Path, env: dict[str, str]) -> None:
    argv = shlex.split(command)
    if argv[0] == "waekit":
        argv = [sys.executable, "-m", "waekit", *argv[1:]]
        if argv[3:4] == ["train"]:
            argv += ["--set", f"train.steps={TRAIN_STEPS}"]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"README command failed: {command}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.slow
def test_every_readme_block_runs_as_written(tmp_path):
    env = _env(tmp_path)
    ran = 0
    for lang, body, reason in readme_blocks():
        if reason:
            continue
        if lang == "bash":
            for command in _commands(body):
                if command.startswith(("python3 -m pip install", "python3 -m pytest")):
                    continue  # checked against .ci/run above
                _run_shell(command, tmp_path, env)
                ran += 1
        elif lang == "python":
            proc = subprocess.run(
                [sys.executable, "-c", body],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, f"README python block failed:\n{body}\n{proc.stderr}"
            ran += 1
    assert ran >= 2
    # The main job's promise: a report from the default command.
    assert (tmp_path / "runs" / "quickstart" / "report.html").is_file()
