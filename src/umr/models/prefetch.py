"""Preparing micro-batches in worker processes while the model runs on the previous ones.

Preparing a batch (decoding and resizing images, the image processor, the tokenizer) runs on the CPU; on a GPU
the forward pass is tens of times faster, so done serially the GPU would mostly wait. A torch DataLoader over
the planned micro-batches runs `prepare` in forked workers, a few batches ahead, and hands them back in order
(pinned for a fast copy to the GPU). Forking shares the loaded embedder with the workers without pickling the
model. An item's own error (UmrError, e.g. an unreadable image) comes back as a value and is raised again in
the caller, so it still names the item, as it does without workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from umr.errors import UmrError

#: fewer micro-batches than this are prepared inline: forking and the first batch's latency would cost more than
#: the overlap saves (the tests' and the server's small encodes never start a process)
MIN_BATCHES_FOR_WORKERS = 4


def cpu_count() -> int:
    """CPUs this process may use (a container's or taskset's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(device: torch.device) -> int:
    """On a GPU the CPU only prepares, so most cores go to workers (8 keep a 2B model busy on mixed items). On a
    CPU the model's own threads use the cores, and one worker overlaps preparation with the forward pass without
    taking many from it; a one-core machine prepares inline."""
    cpus = cpu_count()
    if device.type == "cuda":
        return max(1, min(8, cpus - 1))
    return 1 if cpus >= 2 else 0


def workers_for(requested: int | None, device: torch.device, n_batches: int) -> int:
    """The worker count to use for n_batches: `requested` (None = default_workers), none for small jobs, never
    more than there are batches, none where processes cannot fork (the embedder is not pickled)."""
    workers = default_workers(device) if requested is None else int(requested)
    if workers < 0:
        raise UmrError(f"num_workers must be >= 0, got {workers}")
    if n_batches < MIN_BATCHES_FOR_WORKERS or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return min(workers, n_batches - 1)


class _Failed:
    """An item's error, carried back from a worker as a value (a raised one would lose its type and message)."""

    def __init__(self, error: UmrError) -> None:
        self.error = error


class _Batches(torch.utils.data.Dataset):
    def __init__(self, prepare: Callable[[Sequence[Any]], Any], groups: Sequence[Sequence[Any]]) -> None:
        self.prepare, self.groups = prepare, groups

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, k: int) -> Any:
        try:
            return self.prepare(self.groups[k])
        except UmrError as exc:
            return _Failed(exc)


def prepared_batches(prepare: Callable[[Sequence[Any]], Any], groups: Sequence[Sequence[Any]], workers: int,
                     pin_memory: bool = False) -> Iterator[Any]:
    """prepare(group) for each group, in order; computed `workers` processes ahead when workers > 0."""
    if workers <= 0:
        for group in groups:
            yield prepare(group)
        return
    # A tokenizer that already used its thread pool would warn in every forked worker and then run serially;
    # turning its pool off up front keeps stderr clean (the workers are the parallelism here).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    loader = torch.utils.data.DataLoader(_Batches(prepare, groups), batch_size=None, shuffle=False,
                                         num_workers=workers, multiprocessing_context="fork",
                                         pin_memory=pin_memory, prefetch_factor=2)
    for batch in loader:
        if isinstance(batch, _Failed):
            raise batch.error
        yield batch
