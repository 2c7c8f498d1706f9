"""Metric functions of the benchmark suites, on score matrices; each is small enough to check by hand.

Conventions shared by every function here:

- ``scores`` is a float matrix ``[n_queries, n_candidates]`` (a block of queries is fine: every function works
  row by row, so callers can stream a large corpus in query chunks).
- Ranks are **1-based**. Ties (``TIES``, umr's one rule for every suite and for M-BEIR): ``"pool-order"`` (the
  default) — among equal scores the candidate earlier in the candidate list ranks higher, i.e. a stable sort on
  descending score. It is VLM2Vec's ``argmax`` (index 0 wins); it is a fixed, documented order rather than a
  retriever's (faiss 1.15's flat inner-product search returns exact ties latest-first, flat L2 earliest-first).
  ``"pessimistic"`` counts every tie against the positive (a positive whose score equals a negative's ranks
  after it): umr's earlier rule, kept to show how much ties matter.
- ``eligible`` (optional bool ``[n_queries, n_candidates]``) removes candidates from a query's ranking, e.g. the
  reference image in CIRR, or everything outside the image set for CIRR's subset recall. A positive that is not
  eligible is ignored; a query left without an eligible positive is a miss at every cut-off (rank ``MISS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from umr.errors import UmrError

#: rank of a query whose positives are all absent or excluded: larger than any cut-off
MISS = np.iinfo(np.int64).max // 2
#: tie rules: "pool-order" (earlier candidate first, the project's rule) and "pessimistic" (ties against positives)
TIES = ("pool-order", "pessimistic")


def check_ties(ties: str) -> str:
    if ties not in TIES:
        raise UmrError(f"ties must be one of {TIES}, got {ties!r}")
    return ties


def _masked(row: np.ndarray, eligible_row: np.ndarray | None) -> np.ndarray:
    row = np.asarray(row, dtype=np.float64)
    return row if eligible_row is None else np.where(eligible_row, row, -np.inf)


def first_hit_ranks(scores: np.ndarray, positives: Sequence[Sequence[int]],
                    eligible: np.ndarray | None = None, ties: str = "pool-order") -> np.ndarray:
    """Rank of each query's best-ranked positive → int64 [n_queries].

    rank = 1 + the eligible non-positive candidates ranked above the best eligible positive: those scoring higher,
    and of those scoring the same, the ones earlier in the candidate list (``ties="pool-order"``) or all of them
    (``"pessimistic"``). positives[i]: candidate columns relevant to query i (any number; duplicates are fine).
    """
    s = np.asarray(scores, dtype=np.float64)
    if eligible is not None:
        s = np.where(eligible, s, -np.inf)
    is_pos = np.zeros(s.shape, dtype=bool)
    lengths = [len(p) for p in positives]
    if sum(lengths):
        cols = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1) for p in positives])
        is_pos[np.repeat(np.arange(len(s)), lengths), cols] = True
    is_pos &= np.isfinite(s)
    best = np.where(is_pos, s, -np.inf).max(axis=1, initial=-np.inf)[:, None]
    ahead = s > best
    if check_ties(ties) == "pessimistic":
        ahead |= s == best
    else:  # a tied negative is ahead only when it comes before the first positive with the best score
        first = np.argmax(is_pos & (s == best), axis=1)[:, None]
        ahead |= (s == best) & (np.arange(s.shape[1])[None, :] < first)
    n_before = np.count_nonzero(ahead & ~is_pos & np.isfinite(s), axis=1)
    return np.where(is_pos.any(axis=1), 1 + n_before, MISS).astype(np.int64)


def recall_at_k(ranks: np.ndarray, ks: Sequence[int]) -> dict[int, float]:
    """Hit rate at each k: the share of queries whose first positive ranks ≤ k."""
    ranks = np.asarray(ranks)
    if not len(ranks):
        return {k: float("nan") for k in ks}
    return {k: float(np.mean(ranks <= k)) for k in ks}


def median_rank(ranks: np.ndarray) -> float:
    """Median of the 1-based first-hit ranks (MSR-VTT's MdR; the mean of the two middle ranks when n is even)."""
    return float(np.median(np.asarray(ranks))) if len(ranks) else float("nan")


def mean_rank(ranks: np.ndarray) -> float:
    """Mean of the 1-based first-hit ranks (MnR)."""
    return float(np.mean(np.asarray(ranks, dtype=np.float64))) if len(ranks) else float("nan")


def ranked_order(row: np.ndarray, depth: int, eligible_row: np.ndarray | None = None,
                 is_pos: np.ndarray | None = None, ties: str = "pool-order") -> np.ndarray:
    """Columns of the top `depth` eligible candidates of one query, best first, ties broken by `ties`.

    "pool-order": a stable sort on descending score (earlier columns first); "pessimistic" needs `is_pos` and puts
    negatives before positives within a tie.
    """
    masked = _masked(row, eligible_row)
    pool = np.arange(len(masked))
    if len(masked) > 4 * depth:  # only candidates scoring at least the depth-th best can be in the top depth
        pool = np.flatnonzero(masked >= np.partition(masked, len(masked) - depth)[len(masked) - depth])
    second = is_pos[pool] if check_ties(ties) == "pessimistic" else pool
    order = pool[np.lexsort((second, -masked[pool]))]  # score descending, then the tie key
    return order[np.isfinite(masked[order])][:depth]


def ranked_relevance(row: np.ndarray, positives: Sequence[int], depth: int,
                     eligible_row: np.ndarray | None = None, ties: str = "pool-order") -> np.ndarray:
    """Relevance (bool) of the top `depth` eligible candidates of one query, best first (see ranked_order)."""
    is_pos = np.zeros(len(row), dtype=bool)
    if len(positives):
        is_pos[np.asarray(positives, dtype=np.int64)] = True
    return is_pos[ranked_order(row, depth, eligible_row, is_pos, ties)]


def average_precision_at_k(relevance: Sequence[bool], n_relevant: int, k: int) -> float:
    """CIRCO's AP@k: Σ_{i ≤ k, i relevant} Precision@i, divided by min(n_relevant, k).

    relevance: the ranked list's relevance, best first (at least its first k entries).
    Example: relevant at ranks 1 and 3 with 2 ground truths → (1/1 + 2/3) / 2 = 0.8333.
    """
    rel = np.asarray(relevance[:k], dtype=bool)
    denom = min(n_relevant, k)
    if denom == 0:
        return 0.0
    hits = np.cumsum(rel)
    precision = hits / np.arange(1, len(rel) + 1)
    return float(np.sum(precision[rel]) / denom)


def average_precisions(scores: np.ndarray, positives: Sequence[Sequence[int]], ks: Sequence[int],
                       eligible: np.ndarray | None = None, n_relevant: Sequence[int] | None = None,
                       ties: str = "pool-order") -> dict[int, np.ndarray]:
    """AP@k of every query (CIRCO's definition, see average_precision_at_k) → {k: float64 [n_queries]}.

    n_relevant[i]: how many ground truths query i has (default: its distinct positives), so ground truths the
    corpus lacks still count in the denominator.
    """
    depth = max(ks)
    out = {k: np.zeros(len(scores)) for k in ks}
    for i, row in enumerate(scores):
        pos = sorted(set(int(p) for p in positives[i]))
        rel = ranked_relevance(row, pos, depth, None if eligible is None else eligible[i], ties)
        n_rel = len(pos) if n_relevant is None else n_relevant[i]
        for k in ks:
            out[k][i] = average_precision_at_k(rel, n_rel, k)
    return out


def precision_at_1(candidate_scores: Sequence[np.ndarray], correct: int = 0, ties: str = "pool-order") -> np.ndarray:
    """MMEB's Precision@1 per query, each with its own candidate list → float64 [n_queries] of 0/1.

    1 when the `correct` candidate ranks first: nothing scores above it and, with ``ties="pool-order"``, no
    candidate before it in the list scores the same (VLM2Vec's ``argmax == 0``: the correct candidate is listed
    first, so it wins every tie); with ``"pessimistic"`` it must score strictly above every other candidate.
    """
    check_ties(ties)
    out = np.zeros(len(candidate_scores))
    for i, row in enumerate(candidate_scores):
        row = np.asarray(row, dtype=np.float64)
        best_before = row[:correct].max(initial=-np.inf)
        best_after = row[correct + 1:].max(initial=-np.inf)
        beaten = best_after > row[correct] if ties == "pool-order" else best_after >= row[correct]
        out[i] = float(best_before < row[correct] and not beaten)
    return out
