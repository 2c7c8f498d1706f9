"""The untrained tiny MLLM baseline runs through the same eval path a real checkpoint takes."""

import pytest

from umr.eval.mbeir import EvalOptions, evaluate
from umr.models.registry import load_embedder


@pytest.fixture(scope="module")
def tiny_gme(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("UMR_CACHE", str(tmp_path_factory.mktemp("umr-cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield load_embedder("tiny:gme")
    mp.undo()


def test_untrained_tiny_mllm_evaluates_and_resumes(world_tiny, tiny_gme, tmp_path, monkeypatch):
    opts = EvalOptions(pool="local", tasks=["shapecirr_task7", "shapewiki_task1"], ks=(1, 10, 50),
                       cache_dir=tmp_path / "cache", batch_size=16)
    first = evaluate(tiny_gme, world_tiny, opts)
    assert [r.name for r in first.results] == ["shapewiki_task1", "shapecirr_task7"]
    for r in first.results:
        assert r.metrics.n_queries == 10
        assert r.metrics.recall[50] == 1.0  # the whole 40-candidate pool is within the top 50
        assert 0.0 <= r.metrics.recall[1] <= r.metrics.recall[10] <= 1.0
    assert first.model["name"] != "random"

    def no_forward(batch):
        raise AssertionError("the second run must read every embedding from the cache")

    monkeypatch.setattr(tiny_gme, "forward", no_forward)
    again = evaluate(tiny_gme, world_tiny, opts)
    assert [r.metrics.to_dict() for r in again.results] == [r.metrics.to_dict() for r in first.results]


def test_local_pools_from_the_global_vectors_match_and_embed_nothing_new(world_tiny, tiny_gme, tmp_path,
                                                                         monkeypatch):
    sets = ["shapecoco_task0", "shapewiki_task1", "shapecirr_task7"]
    local = evaluate(tiny_gme, world_tiny, EvalOptions(pool="local", tasks=sets))
    evaluate(tiny_gme, world_tiny, EvalOptions(pool="global", tasks=sets, cache_dir=tmp_path / "cache"))

    def no_forward(batch):
        raise AssertionError("local pools must come from the cached global vectors")

    monkeypatch.setattr(tiny_gme, "forward", no_forward)
    reused = evaluate(tiny_gme, world_tiny, EvalOptions(pool="local", tasks=sets, cache_dir=tmp_path / "cache",
                                                        local_from_global=True))
    assert [r.n_pool for r in reused.results] == [r.n_pool for r in local.results] == [40, 40, 40]
    for a, b in zip(local.results, reused.results):
        assert a.name == b.name
        for k in a.metrics.recall:
            assert abs(a.metrics.recall[k] - b.metrics.recall[k]) <= 1 / a.metrics.n_queries  # ≤ one near-tie
