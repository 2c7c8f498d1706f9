"""The world is solvable and not trivial: oracle ≈ 1, random ≈ k/pool, MiniLM only where text decides."""

import os

import numpy as np
import pytest

from umr.eval.mbeir import EvalOptions, evaluate
from umr.models.baselines import OracleEmbedder, RandomEmbedder
from umr.models.registry import load_embedder


@pytest.mark.parametrize("pool", ["local", "global"])
def test_oracle_reaches_the_ceiling_on_every_task(world_tiny, pool):
    report = evaluate(OracleEmbedder(world_tiny), world_tiny, EvalOptions(pool=pool))
    assert len(report.results) == 16
    for r in report.results:
        assert r.metrics.recall[5] >= 0.95, r.name
        assert r.metrics.n_no_positive_in_pool == 0


def test_random_is_near_k_over_pool(world_tiny):
    report = evaluate(RandomEmbedder(), world_tiny, EvalOptions(pool="local", ks=(10,)))
    got = np.mean([r.metrics.recall[10] for r in report.results])
    expected = np.mean([min(1.0, 10 / r.n_pool) for r in report.results])  # ≈ 0.24 here
    assert abs(got - expected) < 0.08


def test_global_pool_shows_modality_bias_for_random(world_tiny):
    report = evaluate(RandomEmbedder(), world_tiny, EvalOptions(pool="global", ks=(5,)))
    # a random model's top results follow the pool's modality mix: mostly not the asked-for modality
    assert all(r.wrong_modality > 0.3 for r in report.results)


def test_global_modality_pool_keeps_the_tasks_modality_and_only_lifts_ranks(world_tiny):
    from umr.data.mbeir import TASKS

    full = evaluate(RandomEmbedder(), world_tiny, EvalOptions(pool="global", ks=(5, 20)))
    same = evaluate(RandomEmbedder(), world_tiny, EvalOptions(pool="global-modality", ks=(5, 20)))
    sizes = {}
    for f, s in zip(full.results, same.results):
        assert s.wrong_modality is None and s.n_pool < f.n_pool
        sizes.setdefault(TASKS[s.task_id][1], set()).add(s.n_pool)
        # the same scores with only wrong-modality candidates taken out: a positive can only move up
        assert s.metrics.recall[20] >= f.metrics.recall[20], s.name
    assert all(len(v) == 1 for v in sizes.values()) and len(sizes) == 3  # one pool per candidate modality
    assert sum(s.metrics.recall[20] for s in same.results) > sum(f.metrics.recall[20] for f in full.results)


@pytest.fixture(scope="module")
def minilm_report(world_tiny):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sets = ["shapewiki_task1", "shapeedis_task2", "shapecoco_task0", "shapenews_task3", "shapenights_task4"]
    report = evaluate(load_embedder("minilm"), world_tiny, EvalOptions(tasks=sets, ks=(5,), batch_size=64))
    return {r.name: r.metrics.recall[5] for r in report.results}


def test_minilm_beats_random_on_text_tasks(minilm_report):
    # random R@5 on a 40-candidate pool is 0.125
    assert minilm_report["shapewiki_task1"] >= 0.5
    assert minilm_report["shapeedis_task2"] >= 0.5


def test_minilm_is_near_random_on_image_tasks(minilm_report):
    # image-only items embed as "" for a text model: nothing to rank with (ties count against the positive)
    for name in ("shapecoco_task0", "shapenews_task3", "shapenights_task4"):
        assert minilm_report[name] <= 0.3, name
