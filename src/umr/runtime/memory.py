"""What a large retrieval run will need in RAM, checked before it starts rather than discovered by the OOM killer.

    plan = search_memory(n_pool=5_600_000, n_queries=190_000, dim=1536, store_dtype="float16", k=51)
    check_memory(plan, "umr eval --pool global")      # UmrError naming the numbers when the machine has less

The figures follow what `umr.pool_view.PoolView.search` holds (measured by `benchmarks/eval_scale.py`):
  * required: the query vectors (float32), the running top-k lists of every query (float32 scores + int64 rows,
    twice while merging), one candidate block and its score matrix, the exact re-scoring block, and the pool's
    columns (did + modality strings and a file offset, ~120 bytes a candidate with M-BEIR's ids);
  * vectors: the pool's matrix itself, memory-mapped from the embedding store. It need not fit (pages are read
    as the search streams through it and the OS can drop them), but when it does not every pass reads the disk,
    so a run short of it gets a warning, not an error.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from umr.errors import UmrError

GIB = 1 << 30
_COLUMN_BYTES = 120  # per candidate: ids like "5:1234567" as <U10 (40 B) + modality <U10 (40 B) + offset + sort


@dataclass(frozen=True)
class MemoryPlan:
    required: int  # bytes the run cannot do without
    vectors: int  # bytes of the pool's vectors (memory-mapped: faster when they fit, not required)

    def describe(self) -> str:
        return (f"{self.required / GIB:.1f} GiB required + {self.vectors / GIB:.1f} GiB of pool vectors "
                "(memory-mapped; best kept in RAM)")


def search_memory(n_pool: int, n_queries: int, dim: int, store_dtype: str = "float32", k: int = 51,
                  block_rows: int = 32768, query_block: int = 2048) -> MemoryPlan:
    """The memory of embedding nothing more and searching `n_queries` against a pool of `n_pool` vectors."""
    item = np.dtype(store_dtype).itemsize
    queries = n_queries * dim * 4
    lists = 2 * n_queries * 2 * k * 12  # current + candidate lists during a merge
    block = block_rows * dim * 4 + query_block * block_rows * 4 + (1 << 27)  # + the 128 MB exact block
    return MemoryPlan(required=queries + lists + block + n_pool * _COLUMN_BYTES, vectors=n_pool * dim * item)


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (bytes), or None where there is none (then nothing is checked)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(plan: MemoryPlan, what: str, available: int | None = None) -> None:
    """Stop with a clear error when the machine has less than `plan.required`; warn when the vectors won't fit.

    UMR_SKIP_MEMORY_CHECK=1 skips it (for a machine whose MemAvailable understates what it can free)."""
    if os.environ.get("UMR_SKIP_MEMORY_CHECK") == "1":
        return
    available = available_memory() if available is None else available
    if available is None:
        return
    if available < plan.required:
        raise UmrError(f"{what} needs {plan.describe()}, but this machine has {available / GIB:.1f} GiB available. "
                       "Use a machine with more memory, fewer queries at a time (--tasks), or set "
                       "UMR_SKIP_MEMORY_CHECK=1 to try anyway")
    if available < plan.required + plan.vectors:
        warnings.warn(f"{what}: {plan.describe()}, {available / GIB:.1f} GiB available: the pool's vectors do not fit "
                      "in RAM, so the search re-reads them from disk (slower); --store-dtype float16 halves them",
                      stacklevel=2)
