"""Distributed data-parallel training with PyTorch's own engine: N processes, each reading its own shard of every
epoch's samples, gradients averaged by ``torch.distributed`` (gloo on CPU, nccl on GPU) through
``DistributedDataParallel``.

``cellhub models train RECIPE --nproc N`` (``train(cfg, out, nproc=N)``) starts the N processes here, on one
machine; under ``torchrun`` (``torchrun --nproc-per-node N -m hub.cli models train --recipe ...``, any number of
machines) the process group comes from the variables torchrun sets. Every rank starts from the same seed (and DDP
broadcasts rank 0's weights); the global batch (``batch_size``) is split across the ranks, rank ``r`` taking every
N-th sample of the epoch's order, so the N per-rank batches of a step together are the single-process batch of
that step and the averaged gradient is that batch's. What differs from one process: BatchNorm's batch statistics,
which are each rank's (``SyncBatchNorm`` runs on GPUs only), and the order of floating-point sums. Rank 0 alone
writes the model; every rank validates on the whole val split, so they stop at the same epoch.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn

from hub.errors import InvalidInput

if TYPE_CHECKING:
    from hub.models.config import TrainConfig
    from hub.models.model import Model


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def join_torchrun(device: torch.device) -> None:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1 in the environment), once."""
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` as DDP sees it (gradients averaged over the ranks), or ``net`` itself in one process."""
    if world() == 1:
        return net
    ids = [device.index] if device.type == "cuda" and device.index is not None else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)


def rank_batch(batch_size: int) -> int:
    """Each rank's share of the global batch."""
    if batch_size % world():
        raise InvalidInput(f"batch_size {batch_size} does not split over {world()} processes")
    return batch_size // world()


class ShardSampler(torch.utils.data.Sampler[int]):
    """Every ``world``-th index of ``base``'s order, from ``rank`` on: the ranks' shards of one epoch."""

    def __init__(self, base: torch.utils.data.Sampler, rank: int, world: int):
        self.base, self.rank, self.world = base, rank, world

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.base)[self.rank :: self.world])

    def __len__(self) -> int:
        return len(range(self.rank, len(self.base), self.world))  # type: ignore[arg-type]


def shard(sampler: torch.utils.data.Sampler | None, data: torch.utils.data.Dataset, gen: torch.Generator):
    """The training sampler of this rank: the family's (or a shuffle by ``gen``, the same on every rank), sharded."""
    if world() == 1:
        return sampler
    base = sampler or torch.utils.data.RandomSampler(data, generator=gen)  # type: ignore[arg-type]
    return ShardSampler(base, rank(), world())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(cfg: TrainConfig, out: str | Path, nproc: int) -> Model:
    """Train ``cfg`` with ``nproc`` processes on this machine (DDP over loopback); returns the saved model."""
    from hub.models.model import Model

    if nproc < 2:
        raise InvalidInput(f"--nproc must be at least 2 for distributed training, got {nproc}")
    port = _free_port()
    torch.multiprocessing.start_processes(
        _rank_main, args=(cfg, str(out), nproc, port), nprocs=nproc, start_method="spawn", join=True
    )
    return Model.load(out)


def _rank_main(index: int, cfg: TrainConfig, out: str, nproc: int, port: int) -> None:
    """One process of :func:`launch`."""
    from hub.models.train import train

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(index), WORLD_SIZE=str(nproc))
    if index:
        os.environ["CELLHUB_NO_PROGRESS"] = "1"  # one progress bar: rank 0's
    backend = "nccl" if cfg.device.startswith("cuda") and torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, rank=index, world_size=nproc)
    try:
        train(cfg, out)
    finally:
        dist.destroy_process_group()
