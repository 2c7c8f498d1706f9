"""cos + w·P(Yes) fusion over the top-N, on hand-computed lists."""

from __future__ import annotations

import numpy as np

from umr.rerank.fusion import fuse, rerank_list


def test_fuse_is_cos_plus_weighted_p_yes() -> None:
    np.testing.assert_allclose(fuse(np.array([0.5, 0.2]), np.array([0.1, 0.9]), 0.5), [0.55, 0.65])


def test_rerank_reorders_only_the_top_n() -> None:
    rows = np.array([10, 11, 12, 13])
    cos = np.array([0.9, 0.8, 0.7, 0.6])
    p = {10: 0.0, 11: 0.5, 12: 1.0, 13: 1.0}
    new_rows, scores = rerank_list(rows, cos, lambda r: np.array([p[int(x)] for x in r]), n=3, weight=0.25)
    # fused: 10 → 0.9, 11 → 0.925, 12 → 0.95; row 13 is beyond N and keeps its place and cosine
    assert new_rows.tolist() == [12, 11, 10, 13]
    np.testing.assert_allclose(scores, [0.95, 0.925, 0.9, 0.6])


def test_weight_zero_and_ties_keep_retrieval_order() -> None:
    rows, cos = np.array([3, 1, 2]), np.array([0.5, 0.5, 0.4])
    new_rows, _ = rerank_list(rows, cos, lambda r: np.ones(len(r)), n=3, weight=0.0)
    assert new_rows.tolist() == [3, 1, 2]
