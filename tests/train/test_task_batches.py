"""Batching: the historical mixed order is unchanged, and batch_by="task" keeps every full batch inside one task."""

from __future__ import annotations

import pytest

from umr.items import Item
from umr.train.data import Pair, epoch_batches, task_key


def _pairs() -> list[Pair]:
    """Three tasks of different sizes: 20 text→image, 11 image→text, 5 text→text pairs (dataset prefixes 1/2/3)."""
    rows = [Pair(Item(text=f"q{i}", id=f"1:{i}"), Item(image=f"img{i}.png", id=f"1:c{i}")) for i in range(20)]
    rows += [Pair(Item(image=f"q{i}.png", id=f"2:{i}"), Item(text=f"c{i}", id=f"2:c{i}")) for i in range(11)]
    rows += [Pair(Item(text=f"t{i}", id=f"3:{i}"), Item(text=f"d{i}", id=f"3:c{i}")) for i in range(5)]
    return rows


def _task_of(pairs: list[Pair]) -> dict[str, tuple[str, str, str]]:
    return {p.query.id: task_key(p) for p in pairs}


def test_default_order_is_the_plain_shuffle() -> None:
    pairs = _pairs()
    import random

    rng = random.Random(7 * 100_003 + 1)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    batches = epoch_batches(pairs, 4, 0, seed=7, epoch=1)
    assert [[q.id for q in b.queries] for b in batches] == [[pairs[i].query.id for i in order[s:s + 4]]
                                                           for s in range(0, 36, 4)]


def test_task_batches_are_pure_until_the_remainders() -> None:
    pairs = _pairs()
    task = _task_of(pairs)
    batches = epoch_batches(pairs, 4, 0, seed=3, epoch=0, batch_by="task")
    kinds = [{task[q.id] for q in b.queries} for b in batches]
    pure = [k for k in kinds if len(k) == 1]
    # full batches per task: 20 // 4 = 5, 11 // 4 = 2, 5 // 4 = 1 → 8 pure; remainders 0 + 3 + 1 = 4 → 1 mixed
    assert len(pure) == 8 and len(batches) == 9
    assert sum(1 for k in kinds if len(k) > 1) == 1
    seen = [q.id for b in batches for q in b.queries]
    assert len(seen) == len(set(seen)) == 36  # nothing dropped or repeated: 36 is a multiple of 4
    assert epoch_batches(pairs, 4, 0, seed=3, epoch=0, batch_by="task")[0].queries == batches[0].queries
    assert [b.queries for b in epoch_batches(pairs, 4, 0, seed=3, epoch=1, batch_by="task")] != \
        [b.queries for b in batches]


def test_query_modality_batches_mix_the_tasks_of_one_query_modality() -> None:
    pairs = _pairs()
    batches = epoch_batches(pairs, 4, 0, seed=3, epoch=0, batch_by="query_modality")
    kinds = [{q.modality for q in b.queries} for b in batches]
    # text queries: 20 + 5 = 25 → 6 full batches, image queries: 11 → 2; remainders 1 + 3 → 1 mixed batch
    assert sum(len(k) == 1 for k in kinds) == 8 and len(batches) == 9
    cands = [{c.modality for c in b.positives} for b in batches if {q.modality for q in b.queries} == {"text"}]
    assert any(c == {"image", "text"} for c in cands)  # a text→image query meets text→text candidates


def test_unknown_batch_by_is_an_error() -> None:
    with pytest.raises(ValueError, match="batch_by"):
        epoch_batches(_pairs(), 4, 0, seed=0, epoch=0, batch_by="dataset")


def test_a_config_with_an_unknown_batch_by_fails_before_any_model_loads() -> None:
    from umr.train.config import TrainConfig

    with pytest.raises(ValueError, match="batch_by must be one of none, task, query_modality, not 'dataset'"):
        TrainConfig.from_dict({"model": "tiny:gme", "batch_by": "dataset"})
