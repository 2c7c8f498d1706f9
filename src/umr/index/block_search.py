"""Exact top-k by inner product over a large matrix, in blocks, without a second copy of the matrix.

    scores, rows = block_topk(queries, matrix, k)   # float32 [n, k] and int64 [n, k], best first

`matrix` may be a memory-mapped store (float32 or float16): it is read once, one candidate block at a time,
and every block is scored against every query block (query-block × candidate-block products) with a running
top-k merge, so memory is the queries, the running lists and one block, whatever the pool's size. A flat FAISS
index would hold its own float32 copy of the pool (twice the RAM of a float32 store, four times a float16 one).

Kernels (`kernel=`): "torch" multiplies on the given device (CUDA when there is one: a float16 store is
multiplied in float16 with float32 accumulation there); "faiss" runs FAISS's brute-force kNN (`faiss.knn`,
BLAS + its own heap) on each block, CPU only. "auto" is torch, which `benchmarks/eval_scale.py` measured faster
on the CPU too (2,000 queries × 250K × 1536 on 2 cores: see docs/mbeir.md), and is the only one on a GPU.
The scores are float32 sums in the kernel's order, so equal vectors can differ in the last bit: callers that
need exact ties re-score the returned rows (`umr.pool_view.PoolView.search`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch

from umr.errors import UmrError

KERNELS = ("auto", "torch", "faiss")


def resolve_kernel(kernel: str, device: str | None) -> str:
    """The kernel to run on `device` ("auto": torch, the faster one measured on CPU and the one on CUDA)."""
    if kernel not in KERNELS:
        raise UmrError(f"search kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel == "auto":
        return "torch"
    if kernel == "faiss" and device and str(device).startswith("cuda"):
        raise UmrError("the faiss kernel runs on the CPU (faiss-cpu); use --search-kernel torch on a GPU")
    return kernel


def _merge(best_s: np.ndarray, best_r: np.ndarray, s: np.ndarray, r: np.ndarray, k: int) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """Keep the k largest of two [n, *] score lists (with their rows), sorted descending."""
    all_s, all_r = np.concatenate([best_s, s], axis=1), np.concatenate([best_r, r], axis=1)
    part = np.argpartition(-all_s, k - 1, axis=1)[:, :k] if all_s.shape[1] > k else \
        np.broadcast_to(np.arange(all_s.shape[1]), all_s.shape)
    top_s, top_r = np.take_along_axis(all_s, part, 1), np.take_along_axis(all_r, part, 1)
    order = np.argsort(-top_s, axis=1, kind="stable")
    return np.take_along_axis(top_s, order, 1), np.take_along_axis(top_r, order, 1)


def _faiss_block(q: np.ndarray, block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    s, i = faiss.knn(q, np.ascontiguousarray(block, dtype=np.float32), k, metric=faiss.METRIC_INNER_PRODUCT)
    return s, i


def _torch_block(device: str) -> Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    dev = torch.device(device)
    half = dev.type == "cuda"

    def run(q: np.ndarray, block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        dtype = torch.float16 if half and block.dtype == np.float16 else torch.float32
        with warnings.catch_warnings():  # a read-only memory map: torch warns, and we never write to it
            warnings.simplefilter("ignore", UserWarning)
            c = torch.from_numpy(np.ascontiguousarray(block)).to(dev, dtype)
        qt = torch.from_numpy(q).to(dev, dtype)
        s = (qt @ c.T).float()
        top = torch.topk(s, k, dim=1, sorted=False)
        return top.values.cpu().numpy(), top.indices.cpu().numpy()

    return run


def block_topk(queries: np.ndarray, matrix: np.ndarray, k: int, *, device: str | None = None,
               kernel: str = "auto", rows: np.ndarray | None = None, block_rows: int = 32768,
               query_block: int = 2048, progress: Callable[[int], None] | None = None,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Each query's k best rows of `matrix` (or of its subset `rows`): (float32 [n, k], int64 [n, k]), best first.

    Returned row numbers count within `rows` when it is given. `progress(n_rows_done)` is called after each
    candidate block. k ≤ the number of candidates.
    """
    n_cand = len(rows) if rows is not None else len(matrix)
    n = len(queries)
    k = min(k, n_cand)
    best_s = np.full((n, 0), -np.inf, dtype=np.float32)
    best_r = np.zeros((n, 0), dtype=np.int64)
    if n == 0 or k == 0:
        return np.zeros((n, k), np.float32), np.zeros((n, k), np.int64)
    device = device or "cpu"
    run = _faiss_block if resolve_kernel(kernel, device) == "faiss" else _torch_block(device)
    q_all = np.ascontiguousarray(queries, dtype=np.float32)
    for c0 in range(0, n_cand, block_rows):
        c1 = min(c0 + block_rows, n_cand)
        block = matrix[rows[c0:c1]] if rows is not None else matrix[c0:c1]
        kb = min(k, c1 - c0)
        parts_s, parts_r = [], []
        for q0 in range(0, n, query_block):
            s, i = run(q_all[q0:q0 + query_block], block, kb)
            parts_s.append(s.astype(np.float32, copy=False))
            parts_r.append(i.astype(np.int64, copy=False) + c0)
        best_s, best_r = _merge(best_s, best_r, np.concatenate(parts_s), np.concatenate(parts_r), k)
        if progress is not None:
            progress(c1 - c0)
    return best_s, best_r
