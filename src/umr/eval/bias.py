"""Modality bias in global-pool runs: how often the top results have a modality the task did not ask for.

A text→image query answered with captions is the failure MM-Embed's modality-aware negatives target; in a
mixed pool it shows up as a high wrong-modality share even when recall looks acceptable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def wrong_modality_share(top_rows: Sequence[np.ndarray], cand_modality: np.ndarray, wanted: str, k: int) -> float:
    """Mean over queries of (# of the top-k results whose modality != wanted) / (# results looked at).

    top_rows: per query, retrieved row indices in rank order; cand_modality: the modality of every pool row.
    """
    shares = []
    for rows in top_rows:
        head = np.asarray(rows[:k], dtype=np.int64)
        if len(head):
            shares.append(float(np.mean(cand_modality[head] != wanted)))
    return float(np.mean(shares)) if shares else 0.0


def modality_mix(top_rows: Sequence[np.ndarray], cand_modality: np.ndarray, k: int) -> dict[str, float]:
    """Share of each modality among the top-k results, over all queries (for the detailed report)."""
    counts: dict[str, int] = {}
    total = 0
    for rows in top_rows:
        for m in cand_modality[np.asarray(rows[:k], dtype=np.int64)]:
            counts[str(m)] = counts.get(str(m), 0) + 1
            total += 1
    return {m: c / total for m, c in sorted(counts.items())} if total else {}
