"""Rank and world size for multi-process jobs — embedding and training (torchrun, accelerate launch, or env vars).

Launchers set RANK / WORLD_SIZE / LOCAL_RANK; torchrun and accelerate also set MASTER_ADDR / MASTER_PORT, and
then a gloo process group gives us a barrier (gloo works on CPU and GPU hosts alike, and we only ever sync,
never move tensors). Without MASTER_ADDR (e.g. ranks started by a cluster scheduler as separate jobs) the
job falls back to polling the shared output directory, which is the source of truth anyway.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from umr.errors import UmrError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job. rank 0 plans and merges; every rank embeds its slice."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise UmrError(f"environment variable {name}={raw!r} is not an integer") from exc


def dist_info() -> DistInfo:
    """Rank, world size and local rank from the environment (defaults: a single process)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise UmrError(f"RANK={rank} is not in [0, WORLD_SIZE={world}); check the launcher's environment")
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def init_process_group(info: DistInfo, timeout_hours: float = 48.0) -> bool:
    """Join (or reuse) a gloo process group when launched by torchrun/accelerate. True if one is available.

    The long timeout matters: rank 0 may wait at the final barrier for hours while slower ranks embed.
    """
    if info.world_size == 1:
        return False
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return True
    if not os.environ.get("MASTER_ADDR") or not dist.is_available():
        return False
    dist.init_process_group("gloo", rank=info.rank, world_size=info.world_size,
                            timeout=timedelta(hours=timeout_hours))
    return True


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def device_for(info: DistInfo) -> str:
    """One GPU per local rank when there are GPUs, else CPU."""
    import torch

    if torch.cuda.is_available():
        return f"cuda:{info.local_rank % torch.cuda.device_count()}"
    return "cpu"


def rank_device(requested: str | None) -> str | None:
    """The device a rank's model goes on: under a multi-process launch, "cuda" (or no choice on a GPU host)
    means this rank's own GPU (LOCAL_RANK), so eight ranks do not all load onto cuda:0."""
    info = dist_info()
    if info.world_size == 1 or requested not in (None, "cuda"):
        return requested
    import torch

    return device_for(info) if torch.cuda.is_available() else requested
