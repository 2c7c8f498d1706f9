"""Suite metrics against cases computed by hand (each comment shows the arithmetic)."""

import json

import numpy as np
import pytest

from umr.eval.suites.composed import target_aps, target_ranks
from umr.eval.suites.metrics import (
    MISS,
    average_precision_at_k,
    average_precisions,
    first_hit_ranks,
    mean_rank,
    median_rank,
    precision_at_1,
    ranked_relevance,
    recall_at_k,
)
from umr.eval.suites.runner import json_records
from umr.jsonl import FileLineError


def test_first_hit_rank_counts_negatives_ranked_above_the_best_positive():
    scores = np.array([[0.9, 0.5, 0.7, 0.1],    # positive 1 (0.5): 0.9 and 0.7 above → rank 3
                       [0.5, 0.5, 0.2, 0.1],    # positive 1 ties negative 0, which comes first → rank 2
                       [0.1, 0.8, 0.3, 0.9],    # positives 0, 2: best is 0.3; 0.8 and 0.9 above → rank 3
                       [0.5, 0.5, 0.5, 0.5]])   # positive 2 ties all: 0 and 1 come before it, 3 after → rank 3
    assert first_hit_ranks(scores, [[1], [1], [0, 2], [2]]).tolist() == [3, 2, 3, 3]
    # pessimistic: every tied negative goes first
    assert first_hit_ranks(scores, [[1], [1], [0, 2], [2]], ties="pessimistic").tolist() == [3, 2, 3, 4]


def test_position_rule_uses_the_earliest_tied_positive():
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.5]])  # positives 3 and 4 tie negatives 0 and 2; 0.9 above all
    assert first_hit_ranks(scores, [[4, 3]]).tolist() == [4]   # 0.9, then 0 and 2 before column 3
    assert first_hit_ranks(scores, [[0, 4]]).tolist() == [2]   # column 0 is the first of the tie
    assert first_hit_ranks(scores, [[0, 4]], ties="pessimistic").tolist() == [4]  # 0.9, 2 and 3 first
    with pytest.raises(ValueError, match="ties must be one of"):
        first_hit_ranks(scores, [[0]], ties="optimistic")


def test_first_hit_rank_with_exclusions_and_no_eligible_positive():
    scores = np.array([[0.1, 0.8, 0.3, 0.9], [0.9, 0.1, 0.2, 0.3]])
    eligible = np.array([[True, True, True, False],   # 0.9 dropped: only 0.8 beats 0.3 → rank 2
                         [False, True, True, True]])  # the only positive is excluded → a miss
    assert first_hit_ranks(scores, [[0, 2], [0]], eligible).tolist() == [2, MISS]


def test_recall_median_and_mean_rank():
    ranks = np.array([1, 3, MISS, 11])
    assert recall_at_k(ranks, (1, 5, 10)) == {1: 0.25, 5: 0.5, 10: 0.5}
    assert median_rank(np.array([1, 3, 5, 100])) == 4.0   # (3 + 5) / 2
    assert median_rank(np.array([9, 2, 4])) == 4.0
    assert mean_rank(np.array([1, 3, 5, 100])) == 27.25   # 109 / 4


@pytest.mark.parametrize("relevance, n_gt, k, expected", [
    ([1, 0, 1, 0, 0], 2, 5, (1 / 1 + 2 / 3) / 2),       # hits at 1 and 3, two ground truths
    ([1, 0, 1, 0, 0], 3, 5, (1 / 1 + 2 / 3) / 3),       # a third ground truth never retrieved still counts
    ([1, 0, 1, 0, 0], 3, 2, (1 / 1) / 2),               # only the top 2 count, denominator min(3, 2)
    ([0, 1, 1, 1, 1, 1], 10, 5, (1 / 2 + 2 / 3 + 3 / 4 + 4 / 5) / 5),  # denominator min(10, 5) = 5
    ([0, 0, 0], 1, 3, 0.0),
])
def test_average_precision_at_k_is_circos_definition(relevance, n_gt, k, expected):
    assert average_precision_at_k([bool(r) for r in relevance], n_gt, k) == pytest.approx(expected)


def test_average_precisions_from_scores_with_ties():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4],     # ranked relevance 1 0 1 0 0 1
                       [0.5, 0.5, 0.1, 0.1, 0.1, 0.1]])    # gt 0 ties negative 1 and comes first: 1 0
    aps = average_precisions(scores, [[0, 2, 5], [0]], ks=(1, 3, 5))
    assert aps[1].tolist() == pytest.approx([1.0, 1.0])
    assert aps[3].tolist() == pytest.approx([(1 + 2 / 3) / 3, 1.0])
    pessimistic = average_precisions(scores, [[0, 2, 5], [0]], ks=(1, 3, 5), ties="pessimistic")
    assert pessimistic[1].tolist() == pytest.approx([1.0, 0.0])   # the negative goes first: 0 1
    assert pessimistic[5].tolist() == pytest.approx([(1 + 2 / 3) / 3, 1 / 2])


def _unit_2d(cosines):
    c = np.asarray(cosines, dtype=np.float64)
    return np.stack([c, np.sqrt(1 - c ** 2)], axis=1).astype(np.float32)


def test_cirr_recall_and_subset_recall_exclude_the_reference():
    # query = (1, 0), so each candidate scores its cosine; 0 is the reference, 3 the target, set = {0, 2, 3, 4}
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    cands = _unit_2d([0.99, 0.9, 0.8, 0.7, 0.6, 0.95])
    ranks = target_ranks(q, cands, [[3]], drop=[[0]])
    subset = target_ranks(q, cands, [[3]], drop=[[0]], keep_only=[[0, 2, 3, 4]])
    assert ranks.tolist() == [4]    # 0.95, 0.9, 0.8 above the target once 0.99 (reference) is gone
    assert subset.tolist() == [2]   # within the set, only member 2 (0.8) beats it
    assert recall_at_k(subset, (1, 2, 3)) == {1: 0.0, 2: 1.0, 3: 1.0}
    kept = target_ranks(q, cands, [[3]])
    assert kept.tolist() == [5]     # with the reference kept it is one place lower


def test_target_aps_drops_the_reference_when_asked():
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    cands = _unit_2d([0.99, 0.9, 0.8, 0.7])  # gts 1 and 3; 0 is the reference
    kept = target_aps(q, cands, [[1, 3]], ks=(5,))[5]
    dropped = target_aps(q, cands, [[1, 3]], ks=(5,), drop=[[0]])[5]
    assert kept.tolist() == pytest.approx([(1 / 2 + 2 / 4) / 2])   # ranks 2 and 4
    assert dropped.tolist() == pytest.approx([(1 / 1 + 2 / 3) / 2])  # ranks 1 and 3


def test_precision_at_1_a_tie_goes_to_the_earlier_candidate():
    rows = [np.array([0.9, 0.1]), np.array([0.5, 0.5]), np.array([0.2, 0.3, 0.1]), np.array([1.0]),
            np.array([0.4, 0.4, 0.4])]
    # VLM2Vec: argmax(scores) == 0, and numpy's argmax returns the first of equal maxima
    assert precision_at_1(rows).tolist() == [float(np.argmax(r) == 0) for r in rows] == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert precision_at_1(rows, ties="pessimistic").tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    # a correct candidate later in the list loses a tie to an earlier one and wins one against a later one
    assert precision_at_1([np.array([0.4, 0.4, 0.1]), np.array([0.1, 0.4, 0.4])], correct=1).tolist() == [0.0, 1.0]


def test_json_records_gives_the_line_of_each_record(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"dataset": "x", "images": [{"a": 1}, {"b": [1, 2]}], "z": 0}, indent=1))
    assert json_records(path, key="images") == [(4, {"a": 1}), (7, {"b": [1, 2]})]  # "{" of each record
    path.write_text('[{"a": 1},\n {"a": 2},\n {"a": }]')
    with pytest.raises(FileLineError, match=r"a\.json:3: malformed JSON"):
        json_records(path)


@pytest.mark.parametrize("ties", ["pool-order", "pessimistic"])
def test_ranked_relevance_shortcut_matches_a_full_sort_with_ties(ties):
    rng = np.random.default_rng(0)
    for _ in range(50):
        row = np.round(rng.random(60), 1)  # many ties
        pos = rng.choice(60, 4, replace=False).tolist()
        eligible = rng.random(60) > 0.2
        # brute force: eligible candidates by score descending; in a tie, the earlier column (position) or the
        # negatives (pessimistic) first — Python's sort is stable, so equal keys keep column order
        pessimistic = ties == "pessimistic"
        full = sorted((i for i in range(60) if eligible[i]), key=lambda i: (-row[i], pessimistic and i in pos))
        expected = [i in pos for i in full[:5]]
        assert ranked_relevance(row, pos, 5, eligible, ties).tolist() == expected
