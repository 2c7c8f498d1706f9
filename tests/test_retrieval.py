"""`umr.retrieval.PoolView.search` against a brute-force oracle: exact float64 scores, a stable sort on descending
score (the earlier pool row first among equal scores), cut at k — on pools built to tie, across the cut too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from umr.data.mbeir import Candidate
from umr.retrieval import PoolView, exact_scores


def _pool(vectors: np.ndarray, modalities: list[str]) -> PoolView:
    cands = {f"1:{i}": Candidate(f"1:{i}", modalities[i % len(modalities)], txt=f"t{i}") for i in range(len(vectors))}
    return PoolView(cands, vectors)


def _oracle(emb: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(len(emb))
    s = exact_scores(emb, rows, q)
    order = np.lexsort((rows, -s))[:k]
    return s[order], rows[order]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("modalities", [["image"], ["image", "text", "image,text"]])
def test_ties_rank_the_earlier_pool_row_first_and_decide_the_cut(modalities: list[str]) -> None:
    rng = np.random.default_rng(0)
    distinct = _unit(rng.standard_normal((6, 8)))
    emb = distinct[rng.integers(0, 6, 200)]  # 200 rows, 6 vectors: every score is shared by ~33 rows
    queries = _unit(rng.standard_normal((5, 8)))
    view = _pool(emb, modalities)
    for k in (1, 7, 40, 199, 200, 500):
        scores, rows = view.search(queries, k)
        assert rows.shape == (5, min(k, 200)) and rows.dtype == np.int64
        for qi, q in enumerate(queries):
            want_scores, want_rows = _oracle(emb, q, k)
            assert rows[qi].tolist() == want_rows.tolist(), (k, qi)
            np.testing.assert_array_equal(scores[qi], want_scores)


def test_distinct_scores_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    emb, queries = _unit(rng.standard_normal((300, 16))), _unit(rng.standard_normal((4, 16)))
    scores, rows = _pool(emb, ["text"]).search(queries, 10)
    for qi, q in enumerate(queries):
        assert rows[qi].tolist() == _oracle(emb, q, 10)[1].tolist()


def test_empty_pool_and_sub_view() -> None:
    empty = PoolView({}, np.zeros((0, 4), dtype=np.float32))
    scores, rows = empty.search(np.ones((2, 4), dtype=np.float32), 5)
    assert scores.shape == rows.shape == (2, 0)
    emb = _unit(np.random.default_rng(2).standard_normal((5, 4)))
    view = _pool(emb, ["text"])
    sub = view.sub_view({d: view.cands[view.row[d]] for d in ("1:3", "1:1")}, Path("local.jsonl"))
    assert sub.dids == ["1:3", "1:1"] and np.array_equal(sub.emb, emb[[3, 1]])
    with pytest.raises(ValueError, match="not in the global pool"):
        view.sub_view({"9:9": Candidate("9:9", "text", txt="x")}, Path("local.jsonl"))
