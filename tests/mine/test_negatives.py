"""Negative selection rules on hand-made retrieved lists: positives out, the false-negative rule, the quotas."""

from __future__ import annotations

import random

import pytest

from umr.mine.negatives import MineOptions, RankedCandidate, random_negatives, select_negatives

# rank, did, score, modality — one query's top-8 (want "image"); 'p1' and 'p2' are labelled positives.
LIST = [RankedCandidate(did, rank, score, modality) for did, rank, score, modality in [
    ("t1", 1, 0.90, "text"), ("p1", 2, 0.80, "image"), ("i1", 3, 0.79, "image"), ("t2", 4, 0.70, "text"),
    ("i2", 5, 0.60, "image"), ("p2", 6, 0.55, "image"), ("t3", 7, 0.50, "text"), ("i3", 8, 0.40, "image")]]
POS = {"p1", "p2"}


def dids(sel) -> list[str]:
    return [c.did for c in sel.negatives]


def test_positives_are_never_negatives() -> None:
    sel = select_negatives(LIST, POS, 0.80, "image", MineOptions(take=8))
    assert dids(sel) == ["t1", "i1", "t2", "i2", "t3", "i3"]  # every non-positive, in rank order
    assert sel.fn_dropped == 0


def test_plain_mining_takes_the_top_survivors() -> None:
    sel = select_negatives(LIST, POS, 0.80, "image", MineOptions(take=3))
    assert dids(sel) == ["t1", "i1", "t2"]
    assert [c.rank for c in sel.negatives] == [1, 3, 4]


def test_false_negative_filter_drops_exactly_scores_above_ratio_times_positive() -> None:
    # threshold 0.9 × 0.80 = 0.72: i1 (0.79) goes; t1 (0.90) is a text, never a positive of an image task, so it
    # stays; positives are not counted.
    sel = select_negatives(LIST, POS, 0.80, "image", MineOptions(take=8, fn_ratio=0.9))
    assert sel.fn_dropped == 1
    assert dids(sel) == ["t1", "t2", "i2", "t3", "i3"]
    # a score equal to the threshold is kept (strictly greater is dropped): 0.75 × 0.80 = 0.60 = i2's score
    sel = select_negatives(LIST, POS, 0.80, "image", MineOptions(take=8, fn_ratio=0.75))
    assert sel.fn_dropped == 1 and "i2" in dids(sel)


def test_filter_counts_every_dropped_candidate_even_beyond_take() -> None:
    sel = select_negatives(LIST, POS, 0.80, "image", MineOptions(take=1, fn_ratio=0.5))
    # images above 0.40: i1 i2 (2 non-positives); the best survivor is the text t1
    assert sel.fn_dropped == 2 and dids(sel) == ["t1"]
    sel = select_negatives(LIST, POS, 0.80, "text", MineOptions(take=8, fn_ratio=0.5))
    assert sel.fn_dropped == 3 and dids(sel) == ["i1", "i2", "i3"]  # a text task: t1 t2 t3 go, the images stay


def test_rank_window_skips_the_best_right_modality_candidates_at_any_scale() -> None:
    sel = select_negatives(LIST, POS, 0.80, "image", MineOptions(take=8, fn_skip=2))
    assert sel.fn_dropped == 2 and dids(sel) == ["t1", "t2", "t3", "i3"]  # i1, i2 skipped; texts kept
    squeezed = [RankedCandidate(c.did, c.rank, 0.9 + c.score / 100, c.modality) for c in LIST]  # cosines 0.904–0.909
    again = select_negatives(squeezed, POS, 0.908, "image", MineOptions(take=8, fn_skip=2))
    assert dids(again) == dids(sel)  # the same choice when every cosine is squeezed near 0.9
    assert dids(select_negatives(squeezed, POS, 0.908, "image", MineOptions(take=8, fn_ratio=0.95))) == \
        ["t1", "t2", "t3"]  # the ratio rule drops every image there


def test_modality_aware_quota_wrong_then_right() -> None:
    sel = select_negatives(LIST, POS, 0.80, "image", MineOptions(take=4, modality_aware=True, wrong_quota=1))
    assert dids(sel) == ["t1", "i1", "i2", "i3"]  # 1 wrong (best text) + 3 right, rank order
    sel = select_negatives(LIST, POS, 0.80, "image", MineOptions(take=4, modality_aware=True))  # quota = 2
    assert dids(sel) == ["t1", "i1", "t2", "i2"]
    assert sum(c.modality != "image" for c in sel.negatives) == 2


def test_modality_aware_tops_up_when_one_side_runs_out() -> None:
    sel = select_negatives(LIST, POS, 0.80, "image", MineOptions(take=5, modality_aware=True, wrong_quota=1))
    assert dids(sel) == ["t1", "i1", "t2", "i2", "i3"]  # 3 right exist, so a 2nd wrong one fills the 5th slot
    sel = select_negatives(LIST, POS, 0.80, "text", MineOptions(take=4, modality_aware=True, wrong_quota=0))
    assert dids(sel) == ["t1", "i1", "t2", "t3"]  # only 3 texts: topped up by the best image


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="strategy"):
        MineOptions(strategy="nearest")
    with pytest.raises(ValueError, match="ratio"):
        MineOptions(fn_ratio=0.0)
    with pytest.raises(ValueError, match="fn_skip"):
        MineOptions(fn_skip=-1)


def test_random_negatives_exclude_positives() -> None:
    pool = [f"d{i}" for i in range(10)]
    mods = ["image"] * 10
    for seed in range(20):
        negs = random_negatives(pool, mods, {"d0", "d1", "d2"}, 5, random.Random(seed))
        got = [c.did for c in negs]
        assert len(set(got)) == 5 and not {"d0", "d1", "d2"} & set(got)
