"""`evaluate(..., reranker=)`: the fused order decides the metrics; weight 0 changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from umr.data.world import build_world
from umr.eval.mbeir import EvalOptions, evaluate
from umr.models.baselines import RandomEmbedder


class KnowsTheAnswer:
    """A stand-in re-ranker: P(Yes) = 1 for labelled positives, 0 otherwise (from the qrels)."""

    def __init__(self, root: Path) -> None:
        self.pos: dict[str, set[str]] = {}
        for f in (root / "qrels" / "test").glob("*.txt"):
            for line in f.read_text().splitlines():
                qid, _, did, *_ = line.split()
                self.pos.setdefault(qid, set()).add(did)

    def score(self, query, candidates) -> np.ndarray:
        return np.array([float(c.id in self.pos[query.id]) for c in candidates], dtype=np.float32)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evrr") / "world"
    build_world(root, "tiny", seed=5)
    return root


def test_rerank_over_whole_pool_puts_positives_first(world: Path) -> None:
    opts = EvalOptions(tasks=["task0", "task7"], check_images=False, rerank=40, fuse_weight=10.0)
    plain = evaluate(RandomEmbedder(), world, EvalOptions(tasks=["task0", "task7"], check_images=False))
    fused = evaluate(RandomEmbedder(), world, opts, reranker=KnowsTheAnswer(world))
    assert all(r.metrics.recall[1] == 1.0 for r in fused.results)  # pools hold 40: every positive is re-scored
    assert plain.average < 0.5


def test_top_n_only_and_weight_zero(world: Path) -> None:
    base = EvalOptions(tasks=["task3"], check_images=False)
    plain = evaluate(RandomEmbedder(), world, base)
    zero = evaluate(RandomEmbedder(), world, EvalOptions(tasks=["task3"], check_images=False, rerank=10,
                                                         fuse_weight=0.0), reranker=KnowsTheAnswer(world))
    assert [r.metrics.recall for r in zero.results] == [r.metrics.recall for r in plain.results]
    top5 = evaluate(RandomEmbedder(), world, EvalOptions(tasks=["task3"], check_images=False, rerank=5,
                                                         fuse_weight=10.0), reranker=KnowsTheAnswer(world))
    for p, t in zip(plain.results, top5.results):
        # a positive inside the top 5 moves to rank 1; one outside stays where it was
        assert t.metrics.recall[1] == p.metrics.recall[5]
        assert t.metrics.recall[10] == p.metrics.recall[10]


class PairsInOneCall(KnowsTheAnswer):
    """The same answers through `score_pairs`, which eval then calls once per set for every query's top-N."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: list[int] = []

    def score_pairs(self, pairs) -> np.ndarray:
        self.calls.append(len(pairs))
        return np.array([float(c.id in self.pos[q.id]) for q, c in pairs], dtype=np.float32)

    def score(self, query, candidates) -> np.ndarray:
        raise AssertionError("a re-ranker with score_pairs is scored in one call per set")


def test_batched_pairs_give_the_per_query_result(world: Path) -> None:
    opts = EvalOptions(tasks=["task0", "task3"], check_images=False, rerank=5, fuse_weight=10.0)
    per_query = evaluate(RandomEmbedder(), world, opts, reranker=KnowsTheAnswer(world))
    batched_rr = PairsInOneCall(world)
    batched = evaluate(RandomEmbedder(), world, opts, reranker=batched_rr)
    assert [r.metrics for r in batched.results] == [r.metrics for r in per_query.results]
    n_sets = len(batched.results)
    assert len(batched_rr.calls) == n_sets and all(n == 10 * 5 for n in batched_rr.calls)  # 10 queries × top 5
