"""Multi-process training under torchrun (gloo, 2 CPU processes).

K = 2 ranks with m = n / 2 images each must end with the weights of 1 process with batch n
(the global-batch objective), the per-rank estimate of a batch penalty must not, and a run
with a rank killed mid-way must resume, with 2 processes or 1.

Run as a script, this file is the worker that torchrun starts in each process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from blobs import blobs
from safetensors.torch import load_file, save_file

import waekit
from waekit import distributed as dist
from waekit.checkpoint import load_checkpoint
from waekit.config import RunConfig, config_from_dict
from waekit.errors import ConfigError
from waekit.train import Trainer

STEPS = 4
ATOL = 1e-5


_data = blobs


def _config(name: str, global_batch: bool = True, net: str = "mlp", **train) -> RunConfig:
    train_cfg = {
        "steps": STEPS,
        "batch_size": 16,
        "lr": 1e-3,
        "critic_lr": 1e-3,
        "schedule": "constant",
        "log_every": 2,
        "checkpoint_every": STEPS,
        "holdout": 8,
        "seed": 3,
        # fp32: the 1- and 2-process weights are compared to 1e-5, finer than bf16 rounding.
        "precision": "fp32",
    }
    train_cfg.update(train)
    return config_from_dict(
        {
            "model": {
                "name": name,
                "net": net,
                "latent_dim": 3,
                "mlp_hidden": [32],
                "critic_hidden": 16,
                "critic_layers": 2,
            },
            "data": {"name": "npz"},
            "train": train_cfg,
            # A net without batch norm accepts sync_batch_norm on CPUs: nothing to convert.
            "distributed": {"global_batch_objective": global_batch, "sync_batch_norm": True},
        }
    )


#: (run name, model, global_batch_objective): trained by 1 and by 2 processes.
CASES = [
    ("wae-mmd", "wae-mmd", True),
    ("wae-mmd-per-rank", "wae-mmd", False),
    ("wae-gan", "wae-gan", True),
    ("wae-gan-per-rank", "wae-gan", False),
    ("aae", "aae", True),
    ("infovae", "infovae", True),
    ("swae", "swae", True),
]

#: The run that is killed and resumed: long enough to be killed after its first checkpoint.
KILL_STEPS, KILL_EVERY = 16, 4


def _kill_config() -> RunConfig:
    return _config("wae-mmd", steps=KILL_STEPS, checkpoint_every=KILL_EVERY)


def _trainer(cfg: RunConfig, out: Path, **kw) -> Trainer:
    return Trainer(cfg, out, data=_data(), test_data=_data(16, seed=1), progress=False, **kw)


# -- the worker (one per rank, started by torchrun) --------------------------------------------
def _worker(scenario: str, out: Path) -> None:
    with dist.process_group() as world:
        _scenario(scenario, out, world)


def _scenario(scenario: str, out: Path, world: dist.World) -> None:
    rank = world.rank
    (out / f"pid-{rank}").write_text(str(os.getpid()))
    if scenario == "cases":
        for run, name, global_batch in CASES:
            trainer = _trainer(_config(name, global_batch), out / run)
            trainer.fit()
            # Every rank's weights, to check that the ranks agree.
            save_file(dict(trainer.model.state_dict()), str(out / f"{run}-rank{rank}.safetensors"))
        try:
            _trainer(_config("wae-mmd", net="small"), out / "sync-bn")
        except ConfigError as exc:
            (out / f"sync-bn-rank{rank}.txt").write_text(str(exc))
    elif scenario == "slow":  # a run to kill: a pause after each step
        trainer = _trainer(_kill_config(), out)
        step = trainer.train_step

        def slow_step(x):
            result = step(x)
            time.sleep(0.2)
            return result

        trainer.train_step = slow_step
        trainer.fit()
    elif scenario == "resume":
        _trainer(_kill_config(), out, resume=True).fit()
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


# -- launching -------------------------------------------------------------------------------
#: Failures of the local sockets that torchrun and gloo open (a port taken between
#: _free_port and the bind, a connection reset under load), not of the code under test.
NETWORK_ERRORS = (
    "EADDRINUSE",
    "address already in use",
    "Connection reset by peer",
    "Connection refused",
    "DistNetworkError",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(scenario: str, out: Path, nproc: int = 2) -> subprocess.Popen:
    """Start ``torchrun --nproc_per_node=nproc`` on this file; its output goes to a log."""
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        __file__,
        scenario,
        str(out),
    ]
    with open(out / f"torchrun-{scenario}.log", "w") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _log(out: Path, scenario: str) -> str:
    return (out / f"torchrun-{scenario}.log").read_text()[-4000:]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return dict(waekit.load_model(path).state_dict())


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """The CASES trained by 2 processes (rank 0's run folders) and by 1 process."""
    root = tmp_path_factory.mktemp("distributed")
    proc = _torchrun("cases", root / "two")
    single = {}
    for run, name, global_batch in CASES:  # meanwhile, the single-process references
        _trainer(_config(name, global_batch), root / "one" / run).fit()
        single[run] = _weights(root / "one" / run / "model.safetensors")
    code = proc.wait(timeout=120)
    assert code == 0, _log(root / "two", "cases")
    return root, single


@pytest.mark.parametrize("run", ["wae-mmd", "wae-gan", "aae", "infovae", "swae"])
def test_two_processes_match_one_process_with_the_global_batch_objective(cases, run):
    root, single = cases
    two = _weights(root / "two" / run / "model.safetensors")
    assert _max_diff(two, single[run]) < ATOL
    # The ranks hold the same weights (DDP for the auto-encoder, averaged critic gradients).
    ranks = [load_file(str(root / "two" / f"{run}-rank{r}.safetensors")) for r in (0, 1)]
    assert _max_diff(*ranks) == 0.0
    # And training moved them: the comparison is not between two initialisations.
    init = dict(waekit.build_model(run, (1, 12, 12), 3, "mlp", **_small()).state_dict())
    assert _max_diff(init, single[run]) > 1e-3


def _small() -> dict:
    return {"mlp_hidden": (32,), "critic_hidden": 16, "critic_layers": 2}


def test_per_rank_mmd_is_a_different_objective(cases):
    """global_batch_objective=false compares each rank's m codes with m prior draws: another
    estimate of MMD, so the weights leave the single-process path."""
    root, single = cases
    two = _weights(root / "two" / "wae-mmd-per-rank" / "model.safetensors")
    assert _max_diff(two, single["wae-mmd-per-rank"]) > 100 * ATOL


def test_per_rank_critic_terms_need_no_gather(cases):
    """The critic's loss and -log D(z) are means of per-sample terms: averaging the ranks'
    gradients is already the global-batch gradient, with or without the gather."""
    root, single = cases
    two = _weights(root / "two" / "wae-gan-per-rank" / "model.safetensors")
    assert _max_diff(two, single["wae-gan-per-rank"]) < ATOL


def test_sync_batch_norm_on_cpu_is_a_clear_error(cases):
    root, _ = cases
    for r in (0, 1):
        message = (root / "two" / f"sync-bn-rank{r}.txt").read_text()
        assert "sync_batch_norm=true needs GPUs" in message


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.01)


def test_killed_rank_leaves_a_checkpoint_that_resumes_on_two_or_one_processes(tmp_path):
    killed = tmp_path / "killed"
    proc = _torchrun("slow", killed)
    _wait_for(killed / "checkpoints" / "last.safetensors", proc)
    os.kill(int((killed / "pid-1").read_text()), signal.SIGKILL)
    assert proc.wait(timeout=120) != 0  # torchrun reports the failed rank

    # What the surviving rank left is complete and loadable.
    model = waekit.load_model(killed / "model.safetensors")
    meta = load_checkpoint(killed / "checkpoints" / "last.safetensors", model, {})
    assert KILL_EVERY <= meta["step"] < KILL_STEPS and meta["step"] % KILL_EVERY == 0
    assert meta["world_size"] == 2

    straight = _trainer(_kill_config(), tmp_path / "straight")
    straight.fit()
    expected = dict(straight.model.state_dict())

    # Resume with 2 processes, and (from a copy of the same checkpoint) with 1.
    two, one = tmp_path / "two", tmp_path / "one"
    shutil.copytree(killed, two)
    shutil.copytree(killed, one)
    proc = _torchrun("resume", two)
    resumed = _trainer(_kill_config(), one, resume=True)
    assert resumed.step == meta["step"]
    resumed.fit()
    code = proc.wait(timeout=120)
    if code != 0 and any(s in _log(two, "resume") for s in NETWORK_ERRORS):
        first = _log(two, "resume")  # the launch failed on a socket, not in waekit: once more
        code = _torchrun("resume", two).wait(timeout=120)
        assert code == 0, first + "\n--- second launch ---\n" + _log(two, "resume")
    assert code == 0, _log(two, "resume")
    assert _max_diff(dict(resumed.model.state_dict()), expected) < ATOL
    assert _max_diff(_weights(two / "model.safetensors"), expected) < ATOL
    last = load_checkpoint(two / "checkpoints" / "last.safetensors", model, {})
    assert last["step"] == KILL_STEPS and last["world_size"] == 2


if __name__ == "__main__":
    _worker(sys.argv[1], Path(sys.argv[2]))
