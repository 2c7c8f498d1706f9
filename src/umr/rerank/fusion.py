"""Fusing retrieval and re-ranking scores: fused = cos + w · P(Yes) over each query's top-N (U-MARVEL).

Only the top-N are re-scored (the re-ranker costs one MLLM forward per pair); they stay ahead of the rest of
the retrieved list, whose order and scores are the retriever's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def fuse(cos: np.ndarray, p_yes: np.ndarray, weight: float) -> np.ndarray:
    """Elementwise cos + weight · P(Yes) (float64, so ties are decided the same on every machine)."""
    return np.asarray(cos, dtype=np.float64) + weight * np.asarray(p_yes, dtype=np.float64)


def fused_order(cos: np.ndarray | list[float], p_yes: np.ndarray | list[float],
                weight: float) -> tuple[np.ndarray, np.ndarray]:
    """A whole list re-ordered by fused score: (positions best first, fused scores in the list's own order).

    Ties in the fused score keep list order (a stable sort), the rule `rerank_list` and the server share.
    """
    fused = fuse(cos, p_yes, weight)
    return np.argsort(-fused, kind="stable"), fused


def rerank_list(rows: np.ndarray, cos: np.ndarray, p_yes_of: Callable[[np.ndarray], np.ndarray], n: int,
                weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Re-order one query's retrieved list (best first) by fused score over its first n entries.

    rows, cos: [k] pool rows and cosine scores in retrieval order. p_yes_of(rows[:n]) → [n] P(Yes).
    Returns (rows, scores) in the new order; the top-n carry fused scores, the tail its cosine scores. Ties in
    the fused score keep retrieval order (a stable sort).
    """
    n = min(n, len(rows))
    if n == 0:
        return rows, np.asarray(cos, dtype=np.float64)
    order, fused = fused_order(cos[:n], p_yes_of(rows[:n]), weight)
    return (np.concatenate([rows[:n][order], rows[n:]]),
            np.concatenate([fused[order], np.asarray(cos[n:], dtype=np.float64)]))
