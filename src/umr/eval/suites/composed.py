"""Shared by the composed image retrieval suites (CIRR, CIRCO, FashionIQ): a query is a reference image plus a
modification text, the corpus is a set of images, and the reference itself may be excluded from the ranking."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from umr.eval.suites.metrics import average_precisions, first_hit_ranks, ranked_order
from umr.eval.suites.runner import score_blocks

INSTRUCTION = "Retrieve an image that matches the reference image after the modification described in the text."


def _eligible(n_rows: int, n_cands: int, drop: Sequence[Sequence[int]],
              keep_only: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    mask = np.ones((n_rows, n_cands), dtype=bool)
    if keep_only is not None:
        mask[:] = False
        for i, cols in enumerate(keep_only):
            mask[i, list(cols)] = True
    for i, cols in enumerate(drop):
        mask[i, list(cols)] = False
    return mask


def _blocks(queries: np.ndarray, cands: np.ndarray, drop: Sequence[Sequence[int]] | None,
            keep_only: Sequence[Sequence[int]] | None) -> Iterator[tuple[range, np.ndarray, np.ndarray | None]]:
    """Score blocks with their query rows and, when anything is dropped or kept only, the eligible columns."""
    for start, s in score_blocks(queries, cands):
        rows = range(start, start + len(s))
        eligible = None
        if drop is not None or keep_only is not None:
            eligible = _eligible(len(s), s.shape[1], [drop[i] if drop else () for i in rows],
                                 [keep_only[i] for i in rows] if keep_only is not None else None)
        yield rows, s, eligible


def target_ranks(queries: np.ndarray, cands: np.ndarray, targets: Sequence[Sequence[int]],
                 drop: Sequence[Sequence[int]] | None = None,
                 keep_only: Sequence[Sequence[int]] | None = None, ties: str = "pool-order") -> np.ndarray:
    """First-hit rank of each query's targets (int64 [n]) over the corpus (or its `keep_only` columns) minus `drop`."""
    out = []
    for rows, s, eligible in _blocks(queries, cands, drop, keep_only):
        out.append(first_hit_ranks(s, [targets[i] for i in rows], eligible, ties))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def target_aps(queries: np.ndarray, cands: np.ndarray, targets: Sequence[Sequence[int]], ks: Sequence[int],
               drop: Sequence[Sequence[int]] | None = None, ties: str = "pool-order") -> dict[int, np.ndarray]:
    """AP@k per query (CIRCO's definition) → {k: float64 [n]}."""
    parts: dict[int, list[np.ndarray]] = {k: [] for k in ks}
    for start, s in score_blocks(queries, cands):
        rows = range(start, start + len(s))
        eligible = _eligible(len(s), s.shape[1], [drop[i] for i in rows]) if drop is not None else None
        aps = average_precisions(s, [targets[i] for i in rows], ks, eligible, ties=ties)
        for k in ks:
            parts[k].append(aps[k])
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def top_columns(queries: np.ndarray, cands: np.ndarray, depth: int, drop: Sequence[Sequence[int]] | None = None,
                keep_only: Sequence[Sequence[int]] | None = None) -> list[list[int]]:
    """Each query's top `depth` candidate columns, best first, over the corpus (or `keep_only`) minus `drop`.

    Ties follow the project's rule (the earlier candidate first): these are the ranked lists a test server scores.
    """
    out = []
    for _, s, eligible in _blocks(queries, cands, drop, keep_only):
        out += [ranked_order(row, depth, None if eligible is None else eligible[j]).tolist()
                for j, row in enumerate(s)]
    return out
