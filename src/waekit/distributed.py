"""Process-group set-up for torchrun, and the collective pieces the trainer uses.

``torchrun --nproc_per_node=K -m waekit train ...`` starts K processes; each reads its
rank from the environment (:func:`setup`), takes its contiguous share of every
global batch of ``train.batch_size`` images, and runs the encoder and decoder under
:class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on GPUs, gloo on CPUs).

The latent penalties are functions of a whole batch of codes, so a per-rank loss would
change the objective. With ``distributed.global_batch_objective`` (the default) every
rank gathers the codes of all ranks (:func:`gather_rows`, differentiable) and computes the
penalty on the global batch against the global batch of prior draws. Why the gradients
then equal the single-process ones exactly, with no rescaling:

* rank r minimises ``L_r = mean_{i in r} c_i + lam * D(Z, P)``, where Z (N, d) are the
  gathered codes of all N = K * m images and P the N prior draws, the same on every rank;
* the backward of the gather hands each rank the SUM over ranks of dL_s/dz_i for its own
  codes; every rank computes the same D, so that is ``K * lam * dD/dz_i``;
* DDP AVERAGES the parameter gradients over the K ranks, so the encoder's gradient is
  ``(1/K) sum_r [ (1/m) sum_{i in r} dc_i + K lam sum_{i in r} dD/dz_i dz_i ]
  = (1/N) sum_i dc_i + lam dD``: the gradient of the single-process loss on the batch.

The factor K of the gather and the 1/K of DDP cancel. The same holds for per-image terms
computed on the gathered batch (the VAE's KL, the critic's -log D(z)). The latent critic
of WAE-GAN / AAE is trained on a mean of per-sample terms, so it needs no gather: each rank
uses its own codes and its share of the prior draws, and :func:`average_gradients` makes
the critic's gradient the global-batch one.

In a single process every function here is the identity or a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as tdist

from waekit.errors import ConfigError
from waekit.models import Posterior

__all__ = [
    "World",
    "setup",
    "teardown",
    "process_group",
    "current",
    "wrap",
    "sync_batch_norm",
    "gather_posterior",
    "average_scalars",
    "average_gradients",
    "any_rank",
    "barrier",
    "broadcast_model",
    "gather_rows",
    "own_rows",
    "main_first",
]


#: A gloo group for the stop flag when the main backend is NCCL (made on first use).
_cpu_group = None


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> World:
    """Start the process group that torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK
    (NCCL on GPUs, gloo on CPUs); one process without torchrun needs none.

    Call it where training starts and :func:`teardown` where it ends (as
    :func:`waekit.train.train` does).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not tdist.is_initialized():
        tdist.init_process_group(backend=backend)
    return World(rank=rank, size=size, local_rank=local_rank, device=device)


def teardown(world: World, synchronise: bool = True) -> None:
    """End the process group that :func:`setup` started.

    ``synchronise``: wait at a barrier first, so that no rank tears down its sockets while
    another still talks to it (gloo then aborts the late rank: "terminate called without an
    active exception"). Pass False when leaving on an error, where the other ranks may never
    reach the barrier.
    """
    global _cpu_group
    if world.size > 1 and tdist.is_initialized():
        if synchronise:
            tdist.barrier()
        tdist.destroy_process_group()
    _cpu_group = None


@contextmanager
def process_group() -> Iterator[World]:
    """:func:`setup` on entry, :func:`teardown` on exit: after a barrier when the body
    finished, at once when it raised."""
    world = setup()
    try:
        yield world
    except BaseException:
        teardown(world, synchronise=False)
        raise
    teardown(world)


def current() -> World:
    """The World of the process group already started (by :func:`setup`), or one process.

    Under torchrun without a started group this is an error rather than K processes that
    each silently train alone."""
    if tdist.is_available() and tdist.is_initialized():
        rank, size = tdist.get_rank(), tdist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = tdist.get_backend() == "nccl"
        device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
        return World(rank=rank, size=size, local_rank=local_rank, device=device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "WORLD_SIZE > 1 but no process group is started; train with waekit.train.train() "
            "or `torchrun ... -m waekit train`, which start one (waekit.distributed.setup())"
        )
    return World()


def wrap(model: torch.nn.Module, world: World) -> torch.nn.Module:
    """``model`` under DistributedDataParallel (gradients averaged over ranks), or as is."""
    if world.size <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sync_batch_norm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Batch norm over the global batch (SyncBatchNorm), which PyTorch runs on GPUs only."""
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if has_bn and device.type != "cuda":
        raise ConfigError(
            "distributed.sync_batch_norm=true needs GPUs: PyTorch's SyncBatchNorm does not run "
            f"on {device.type}. Set distributed.sync_batch_norm=false (each process then "
            "normalises over its own share of the batch), or use model.batch_norm=false"
        )
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


class _GatherRows(torch.autograd.Function):
    """All ranks' (m, ...) tensors concatenated in rank order, (K * m, ...).

    Backward: the gradient of every rank's loss w.r.t. this rank's rows, SUMMED over ranks
    (an all-reduce, then this rank's slice).
    """

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        size, rank = tdist.get_world_size(), tdist.get_rank()
        parts = [torch.empty_like(t) for _ in range(size)]
        tdist.all_gather(parts, t.contiguous())
        ctx.rows = (rank * t.shape[0], (rank + 1) * t.shape[0])
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        tdist.all_reduce(grad)
        start, stop = ctx.rows
        return grad[start:stop]


def gather_rows(t: torch.Tensor, world: World) -> torch.Tensor:
    """Every rank's rows of ``t`` (m, ...) in rank order, (K * m, ...); differentiable.

    Rank r's share of a global batch is its rows r*m .. (r+1)*m - 1 (see
    :class:`~waekit.train.DeviceBatches`), so the result is the global batch in the order a
    single process sees it.
    """
    if world.size <= 1:
        return t
    return _GatherRows.apply(t)


def gather_posterior(post: Posterior, world: World) -> Posterior:
    """The posterior of the global batch: z (and mu, logvar) of all ranks in one gather."""
    if world.size <= 1:
        return post
    parts = [post.z] if post.logvar is None else [post.z, post.mu, post.logvar]
    whole = gather_rows(torch.cat(parts, dim=1), world).split(post.z.shape[1], dim=1)
    if post.logvar is None:
        return Posterior(z=whole[0], mu=whole[0])
    return Posterior(z=whole[0], mu=whole[1], logvar=whole[2])


def own_rows(t: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's contiguous share of a global-batch tensor (N, ...) -> (N / K, ...)."""
    if world.size <= 1:
        return t
    m = t.shape[0] // world.size
    return t[world.rank * m : (world.rank + 1) * m]


def average_gradients(params: Sequence[torch.nn.Parameter], world: World) -> None:
    """Average ``.grad`` over ranks in place (one all-reduce of a flat buffer).

    For parameters outside DistributedDataParallel, such as the latent critic.
    """
    if world.size <= 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    tdist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_scalars(values: dict[str, torch.Tensor], world: World) -> dict[str, torch.Tensor]:
    if world.size <= 1:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].float() for k in keys])
    tdist.all_reduce(stacked)
    return dict(zip(keys, stacked / world.size, strict=True))


def any_rank(flag: bool, world: World) -> bool:
    """Whether ``flag`` is true on any rank: lets all ranks stop at the same step when a
    signal reaches them a step apart. A CPU (gloo) all-reduce, so no GPU sync."""
    global _cpu_group
    if world.size <= 1:
        return flag
    if _cpu_group is None:
        cpu = tdist.get_backend() == "gloo"
        _cpu_group = tdist.group.WORLD if cpu else tdist.new_group(backend="gloo")
    t = torch.tensor([int(flag)], dtype=torch.int32)
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX, group=_cpu_group)
    return bool(t.item())


def barrier(world: World) -> None:
    if world.size > 1:
        tdist.barrier()


@contextmanager
def main_first(world: World) -> Iterator[None]:
    """Run the body on rank 0 first, then on the other ranks (e.g. a download into a
    shared folder, which the others then find in place)."""
    if not world.is_main:
        barrier(world)
    yield
    if world.is_main:
        barrier(world)


def broadcast_model(model: torch.nn.Module, world: World) -> None:
    if world.size <= 1:
        return
    for t in list(model.parameters()) + list(model.buffers()):
        tdist.broadcast(t.data, src=0)
