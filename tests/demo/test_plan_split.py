"""The plan's `parallel` list decides which baselines the second process trains; --jobs 1 keeps all here."""

from __future__ import annotations

import pytest

from umr.demo.pipeline import load_plan, split_baselines


def test_parallel_baselines_go_to_the_second_process_in_plan_order() -> None:
    plan = {"baselines": {"plain": {}, "clip-sf": {}, "text": {}}, "parallel": ["text", "plain"]}
    assert split_baselines(plan, jobs=2) == (["plain", "text"], ["clip-sf"])
    assert split_baselines(plan, jobs=1) == ([], ["plain", "clip-sf", "text"])
    assert split_baselines({"baselines": plan["baselines"]}, jobs=2) == (["plain", "clip-sf", "text"], [])
    with pytest.raises(ValueError, match=r"parallel names \['txt'\], which are not baselines"):
        split_baselines({**plan, "parallel": ["txt"]}, jobs=2)


def test_shipped_plans_name_only_their_own_baselines() -> None:
    for size in ("tiny", "small"):
        plan = load_plan(size)
        assert set(plan["parallel"]) <= set(plan["baselines"]), size
