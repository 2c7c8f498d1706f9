"""Scoring one eval set from its search results: ranks of the positives under the tie rule, the metrics,
re-ranking by fusion and the modality-bias shares (`umr.eval.mbeir.evaluate` calls `score_set` per set).

Ties (the project-wide rule): among equal scores the candidate that comes earlier in the candidate pool ranks
higher, a stable sort on descending score; `ties="pessimistic"` ranks every tied candidate above the positive
instead, and each set keeps the other rule's metrics when they differ (see `umr.eval.mbeir`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from umr.data.mbeir_sets import EvalSet
from umr.errors import UmrError
from umr.eval.bias import wrong_modality_share
from umr.eval.metrics import Metrics, QueryResult, aggregate, positive_ranks
from umr.eval.options import EvalOptions
from umr.pool_view import PoolView


def pool_order_ranks(top: np.ndarray, top_scores: np.ndarray, pos_rows: np.ndarray,
                     pos_scores: np.ndarray) -> list[int]:
    """1-based ranks of a query's positives under the pool-order rule: a stable sort on descending score.

    top / top_scores: the retrieved pool rows and their scores (any order); pos_rows / pos_scores: every positive
    in the pool. A positive that was not retrieved ranks after the list (exact for k ≤ len(list)), positives
    among themselves by (score, row).
    """
    order = np.lexsort((top, -top_scores))
    place = {int(r): i + 1 for i, r in enumerate(top[order])}
    ranks = sorted(place[int(r)] for r in pos_rows if int(r) in place)
    rest = sorted((-float(s), int(r)) for r, s in zip(pos_rows, pos_scores) if int(r) not in place)
    return ranks + [len(top) + 1 + j for j in range(len(rest))]


def with_boundary_ties(pool: PoolView, q: np.ndarray, top: np.ndarray, top_scores: np.ndarray,
                        pos_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The retrieved list plus every pool row tied with its last score, when a positive has that score.

    The search's top-k already holds the tied candidates the pool-order rule puts first; the pessimistic rule, and
    a positive's rank among those cut off, need all of them. Rare: only such queries pay a pass over the pool."""
    if not len(top) or len(top) == len(pool) or not np.any(pos_scores == top_scores.min()):
        return top, top_scores
    rows = np.union1d(top, pool.rows_from(q, float(top_scores.min())))
    return rows, pool.exact(rows, q)


def search_depth(opts: EvalOptions, n_pool: int, rerank: bool = False) -> int:
    """How many of each query's best candidates the scoring needs: the largest cut-off, bias k or re-rank depth."""
    return min(max(*opts.ks, opts.bias_k, opts.rerank if rerank else 0), n_pool)


def score_set(es: EvalSet, q_emb: np.ndarray, pool: PoolView, opts: EvalOptions, rerank_fn: Any = None,
              prefetch: Any = None, found: tuple[np.ndarray, np.ndarray] | None = None,
              ) -> tuple[Metrics, Metrics | None, list[float] | None]:
    """Metrics under opts.ties, the other rule's metrics when they differ, the modality-bias shares (global).

    rerank_fn(query index, pool rows) → P(Yes) per row: re-order each query's top-N (opts.rerank) by fusion;
    prefetch(every query's retrieved rows), when given, is called once before, so rerank_fn can look scores up.
    found: this set's (scores, rows) from `pool.search` at `search_depth`, when the caller searched several
    sets' queries in one pass over the pool; else the set is searched here."""
    if opts.ties not in ("pool-order", "pessimistic"):
        raise UmrError(f"ties must be 'pool-order' or 'pessimistic', got {opts.ties!r}")
    k = search_depth(opts, len(pool), rerank_fn is not None)
    scores, idx = found if found is not None else pool.search(q_emb, k)  # ordered by the tie rule
    if prefetch is not None and rerank_fn is not None and opts.rerank > 0:
        prefetch(list(idx))
    results, others, tops = [], [], []
    for qi, q in enumerate(es.queries):
        top, top_scores = idx[qi], scores[qi]
        tops.append(top)
        pos = list(dict.fromkeys(es.positives[q.qid]))
        pos_rows = np.array([pool.row[d] for d in pos if d in pool.row], dtype=np.int64)
        if rerank_fn is not None and opts.rerank > 0:
            from umr.rerank.fusion import rerank_list

            top, _ = rerank_list(top, top_scores, lambda rows, qi=qi: rerank_fn(qi, rows), opts.rerank,
                                 opts.fuse_weight)
            tops[-1] = top
            # ranks are positions in the fused list; positives it missed rank after it (exact for k ≤ len(top))
            hit = [i + 1 for i, row in enumerate(top) if row in set(pos_rows.tolist())]
            ranks = hit + [len(top) + 1 + j for j in range(len(pos_rows) - len(hit))]
            results.append(QueryResult(q.qid, ranks, len(pos)))
            others.append(results[-1])
            continue
        pos_scores = pool.exact(pos_rows, q_emb[qi])
        top, top_scores = with_boundary_ties(pool, q_emb[qi], top, top_scores, pos_scores)
        by_order = QueryResult(q.qid, pool_order_ranks(top, top_scores, pos_rows, pos_scores), len(pos))
        pessimistic = QueryResult(q.qid, positive_ranks(top_scores, np.isin(top, pos_rows), pos_scores), len(pos))
        chosen, other = (by_order, pessimistic) if opts.ties == "pool-order" else (pessimistic, by_order)
        results.append(chosen)
        others.append(other)
    metrics, alt = aggregate(results, opts.ks), aggregate(others, opts.ks)
    alt = None if alt == metrics else alt
    if opts.pool != "global":  # (global-modality holds the task's modality only: no bias to measure)
        return metrics, alt, None
    return metrics, alt, [wrong_modality_share(tops, pool.modality, es.cand_modality, k) for k in (opts.bias_k, 1)]
