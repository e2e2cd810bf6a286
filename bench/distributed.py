"""Data-parallel training under ``torchrun``: process group, sharded sampler, DDP wrapper.

``fit`` asks ``from_env`` for a context; outside torchrun (``WORLD_SIZE`` unset or 1) it is
None and training is the plain single-process loop. Under ``torchrun --nproc_per_node K``
each process trains on ``batch_size / K`` examples of every global batch: the sampler
draws the single-process loop's per-epoch permutation (seed ``seed*1000 + epoch``, through
the same generator) and deals it out round-robin, so the K shards of step i are exactly the
single-process batch i (when the dataset size is a multiple of the batch size), and DDP
averages the gradients over them. Only rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

from .errors import UserError


class ShardSampler(Sampler):
    """Rank ``rank``'s share of ``base``'s order: every ``world_size``-th index, the order
    padded (from its start) to a multiple of ``world_size`` so every rank gets as many.

    Unlike ``DistributedSampler`` (own generator), it iterates the single-process sampler
    itself, so the DataLoader draws its iterator seed from the same generator first and the
    permutation is the single-process one, exactly."""

    def __init__(self, base: Sampler, rank: int, world_size: int):
        self.base, self.rank, self.world_size = base, rank, world_size

    def __iter__(self):
        order = list(self.base)
        order += order[:(-len(order)) % self.world_size]
        return iter(order[self.rank::self.world_size])

    def __len__(self) -> int:
        return -(-len(self.base) // self.world_size)


@dataclass
class DDPContext:
    rank: int
    world_size: int
    device: torch.device
    owns_group: bool  # this context initialised the process group (and tears it down)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def shard(self, sampler: Sampler) -> Sampler:
        return ShardSampler(sampler, self.rank, self.world_size)

    def mean(self, value: float) -> float:
        """The mean of a per-rank float over all ranks (the global batch's loss)."""
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.item() / self.world_size

    def no_sync(self, ddp_model, last: bool):
        """Skip the gradient all-reduce on micro-batches before the last one."""
        return contextlib.nullcontext() if last else ddp_model.no_sync()

    def close(self, wait: bool = True) -> None:
        if wait:
            dist.barrier()  # rank 0's last checkpoint is on disk before anyone returns
        if self.owns_group:
            dist.destroy_process_group()


def is_main_process() -> bool:
    """True outside torchrun and on its rank 0 (the process that writes files)."""
    return int(os.environ.get("RANK", "0")) == 0


def local_device(device: str) -> str:
    """``cuda`` means this process's GPU (``cuda:LOCAL_RANK``) under torchrun."""
    if device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def from_env(device: str, batch_size: int) -> DDPContext | None:
    """A DDP context when launched by torchrun with WORLD_SIZE > 1, else None."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    if batch_size % world_size:
        raise UserError(f"batch_size={batch_size} (the global batch) must divide by the "
                        f"{world_size} torchrun processes")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda requested but no CUDA device is available")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend=backend)
    return DDPContext(dist.get_rank(), dist.get_world_size(), dev, owns)
