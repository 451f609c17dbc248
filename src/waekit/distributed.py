"""Process-group set-up for torchrun, and the collective pieces the trainer uses.

In a single process every function here is the identity or a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist

from waekit.config import RunConfig

__all__ = ["World", "wrap", "critic_loss", "average_scalars", "barrier", "broadcast_model"]


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> World:
        """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK; start the process group if needed."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls()
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
        return cls(rank=rank, size=size, local_rank=local_rank, device=device)


def wrap(model: torch.nn.Module, world: World) -> torch.nn.Module:
    if world.size <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def critic_loss(model, z: torch.Tensor, world: World, config: RunConfig) -> torch.Tensor:
    return model.critic_loss(z)


def average_scalars(values: dict[str, torch.Tensor], world: World) -> dict[str, torch.Tensor]:
    if world.size <= 1:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].float() for k in keys])
    tdist.all_reduce(stacked)
    return dict(zip(keys, stacked / world.size, strict=True))


def barrier(world: World) -> None:
    if world.size > 1:
        tdist.barrier()


def broadcast_model(model: torch.nn.Module, world: World) -> None:
    if world.size <= 1:
        return
    for t in list(model.parameters()) + list(model.buffers()):
        tdist.broadcast(t.data, src=0)
