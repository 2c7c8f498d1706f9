"""Retrieval metrics of the M-BEIR protocol, plus MRR@10 and NDCG@10.

Recall@k is the *hit rate* M-BEIR reports: 1 when any positive is in the top k, else 0, averaged over queries.

Ties are broken **against the positives**: a positive whose score equals a negative's is ranked after it. So a
model that cannot tell candidates apart (e.g. a text model facing image-only candidates, which all embed alike)
gets no credit from the order the pool happened to be written in.

A positive the pool does not contain still counts: its query stays in the denominator, and if it has no other
positive in the pool it scores 0. `Metrics.n_no_positive_in_pool` says how many such queries there were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

DEFAULT_KS = (1, 5, 10, 20, 50)


def positive_ranks(top_scores: Sequence[float], top_is_pos: Sequence[bool], pos_scores: Sequence[float]) -> list[int]:
    """1-based ranks of a query's positives, ties against positives.

    top_scores / top_is_pos: the retrieved list (any order; all retrieved items, scores comparable to pos_scores).
    pos_scores: the score of every positive *in the pool* (retrieved or not).
    A positive scoring below everything retrieved ranks after the whole list, which is exact for k ≤ len(list).
    """
    neg = np.sort(np.asarray([s for s, p in zip(top_scores, top_is_pos) if not p], dtype=np.float64))
    ranks = []
    for i, s in enumerate(sorted(pos_scores, reverse=True)):
        # negatives with score >= s come first (ties against the positive), then the better positives
        n_neg_before = len(neg) - int(np.searchsorted(neg, s, side="left"))
        ranks.append(i + 1 + n_neg_before)
    return ranks


@dataclass
class QueryResult:
    """Ranks of one query's in-pool positives (sorted), and how many positives it has in all."""

    qid: str
    ranks: list[int]
    n_pos: int

    @property
    def first(self) -> int | None:
        return self.ranks[0] if self.ranks else None


@dataclass
class Metrics:
    """Means over queries. recall[k] is the hit rate at k."""

    n_queries: int
    recall: dict[int, float]
    mrr10: float
    ndcg10: float
    n_no_positive_in_pool: int = 0
    n_positives_absent: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["recall"] = {str(k): v for k, v in self.recall.items()}
        return d


def ndcg_at(ranks: Sequence[int], n_pos: int, k: int = 10) -> float:
    """Binary-relevance NDCG@k; the ideal list has min(n_pos, k) positives on top (absent ones included)."""
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r <= k)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(n_pos, k)))
    return dcg / ideal if ideal else 0.0


def aggregate(results: Sequence[QueryResult], ks: Sequence[int] = DEFAULT_KS) -> Metrics:
    """Hit-rate recall at each k, MRR@10, NDCG@10 over all queries (none dropped)."""
    n = len(results)
    if n == 0:
        return Metrics(0, {k: 0.0 for k in ks}, 0.0, 0.0)
    recall = {k: sum(1 for r in results if r.first is not None and r.first <= k) / n for k in ks}
    mrr = sum(1.0 / r.first for r in results if r.first is not None and r.first <= 10) / n
    ndcg = sum(ndcg_at(r.ranks, r.n_pos, 10) for r in results) / n
    return Metrics(
        n_queries=n, recall=recall, mrr10=mrr, ndcg10=ndcg,
        n_no_positive_in_pool=sum(1 for r in results if not r.ranks),
        n_positives_absent=sum(r.n_pos - len(r.ranks) for r in results),
    )


def evaluate_scores(scores: np.ndarray, cand_ids: Sequence[str], qids: Sequence[str],
                    positives: dict[str, Sequence[str]], ks: Sequence[int] = DEFAULT_KS) -> Metrics:
    """Metrics from a dense score matrix [n_queries, n_cands] (small cases and tests; the runner uses FAISS)."""
    index = {d: i for i, d in enumerate(cand_ids)}
    results = []
    for row, qid in zip(scores, qids):
        pos = [index[d] for d in positives[qid] if d in index]
        is_pos = np.zeros(len(cand_ids), dtype=bool)
        is_pos[pos] = True
        ranks = positive_ranks(row, is_pos, row[pos])
        results.append(QueryResult(qid, ranks, len(positives[qid])))
    return aggregate(results, ks)
