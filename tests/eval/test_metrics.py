"""Metrics on hand-computed cases: ties, several positives, a positive absent from the pool."""

import math

import numpy as np
import pytest

from umr.eval.metrics import QueryResult, aggregate, evaluate_scores, ndcg_at, positive_ranks

CANDS = ["a", "b", "c", "d"]


def test_single_positive_ranked_third():
    m = evaluate_scores(np.array([[0.9, 0.5, 0.7, 0.1]]), CANDS, ["q"], {"q": ["b"]}, ks=(1, 2, 3, 5))
    assert m.recall == {1: 0.0, 2: 0.0, 3: 1.0, 5: 1.0}
    assert m.mrr10 == pytest.approx(1 / 3)
    assert m.ndcg10 == pytest.approx(1 / math.log2(4))


def test_ties_count_against_the_positive():
    # every candidate scores the same: the positive goes after all three negatives
    m = evaluate_scores(np.full((1, 4), 0.5), CANDS, ["q"], {"q": ["a"]}, ks=(1, 3, 4))
    assert m.recall == {1: 0.0, 3: 0.0, 4: 1.0}
    # a tie with one negative above a lower one: rank 2, not 1
    assert positive_ranks([0.8, 0.8, 0.1], [True, False, False], [0.8]) == [2]


def test_several_positives():
    m = evaluate_scores(np.array([[0.9, 0.8, 0.7, 0.6]]), CANDS, ["q"], {"q": ["b", "d"]}, ks=(1, 2, 5))
    assert m.recall == {1: 0.0, 2: 1.0, 5: 1.0}
    assert m.mrr10 == pytest.approx(0.5)
    ideal = 1 + 1 / math.log2(3)
    assert m.ndcg10 == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)


def test_positive_absent_from_pool_is_counted_not_dropped():
    scores = np.array([[0.9, 0.1, 0.2, 0.3], [0.1, 0.9, 0.2, 0.3]])
    m = evaluate_scores(scores, CANDS, ["q1", "q2"], {"q1": ["a"], "q2": ["zz:1"]}, ks=(1, 5))
    assert m.n_queries == 2
    assert m.recall == {1: 0.5, 5: 0.5}
    assert m.n_no_positive_in_pool == 1
    assert m.n_positives_absent == 1


def test_absent_positive_still_in_ideal_dcg():
    # one positive at rank 1 and one absent: the ideal list has both, so NDCG < 1
    assert ndcg_at([1], n_pos=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_positive_below_the_retrieved_list_ranks_after_it():
    # retrieved top-3 are negatives; a positive scoring lower is rank 4 at best
    assert positive_ranks([0.9, 0.8, 0.7], [False, False, False], [0.2]) == [4]


def test_aggregate_empty_and_mrr_cutoff():
    assert aggregate([]).n_queries == 0
    m = aggregate([QueryResult("q", [11], 1), QueryResult("r", [2], 1)], ks=(10, 20))
    assert m.recall == {10: 0.5, 20: 1.0}
    assert m.mrr10 == pytest.approx(0.25)  # rank 11 is past the MRR@10 cut-off
