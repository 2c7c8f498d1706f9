"""Every suite end to end on its fixture: a perfect key embedder scores exactly 1, a reversed one scores lower,
and a real tiny model produces a table with the right rows and keys and values in range."""

import numpy as np
import pytest
from suite_fixtures import BUILDERS, KeyEmbedder

from umr.eval.suites import SUITES, SuiteOptions, run_suite

#: suite → (row names, metric names) expected on the fixture
EXPECTED = {
    "flickr30k": (["flickr30k test"], ["t2i R@1", "t2i R@5", "t2i R@10", "i2t R@1", "i2t R@5", "i2t R@10", "RSUM"]),
    "coco": (["coco 10 img", "coco 2 img (5-fold mean)"],
             ["t2i R@1", "t2i R@5", "t2i R@10", "i2t R@1", "i2t R@5", "i2t R@10", "RSUM"]),
    "circo": (["circo val"], ["mAP@5", "mAP@10", "mAP@25", "mAP@50", "R@5", "R@10", "R@25", "R@50"]),
    "cirr": (["cirr val"], ["R@1", "R@5", "R@10", "R@50", "Rs@1", "Rs@2", "Rs@3", "avg"]),
    "fashioniq": (["dress", "shirt", "toptee", "mean"], ["R@10", "R@50", "avg"]),
    "mmeb": (["ImageNet-1K", "MSCOCO_t2i", "Classification (1 tasks)", "Retrieval (1 tasks)", "mean (2 tasks)"],
             ["P@1"]),
    "msrvtt": (["MSRVTT_JSFUSION_test"], ["t2v R@1", "t2v R@5", "t2v R@10", "t2v MdR", "t2v MnR", "v2t R@1",
                                          "v2t R@5", "v2t R@10", "v2t MdR", "v2t MnR"]),
}
#: the headline metric of each suite, and its value when every query's answers rank last (hand-computed)
WORST = {
    "flickr30k": ("t2i R@1", 0.0), "coco": ("i2t R@5", 0.0), "circo": ("mAP@5", 0.0), "cirr": ("Rs@1", 0.0),
    "fashioniq": ("R@10", 0.0), "mmeb": ("P@1", 0.0), "msrvtt": ("t2v MdR", 4.0),
}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("suites")
    return {name: build(root) for name, build in BUILDERS.items()}


def test_every_suite_has_a_fixture_and_expectations():
    assert set(SUITES) == set(BUILDERS) == set(EXPECTED)


def _is_rank(metric: str) -> bool:
    return metric.endswith(("MdR", "MnR"))


@pytest.mark.parametrize("suite", list(SUITES))
def test_perfect_embedder_scores_exactly_one(suite, fixtures):
    fx = fixtures[suite]
    result = run_suite(suite, KeyEmbedder(fx.answers), fx.root)
    rows, metrics = EXPECTED[suite]
    assert [r.name for r in result.rows] == rows
    for row in result.rows:
        assert list(row.metrics) == metrics
        for name, value in row.metrics.items():
            expected = 6.0 if name == "RSUM" else 1.0  # ranks are 1, rates 100 %
            assert value == expected, (row.name, name)


@pytest.mark.parametrize("suite", list(SUITES))
def test_reversed_embedder_scores_lower(suite, fixtures):
    fx = fixtures[suite]
    worst = run_suite(suite, KeyEmbedder(fx.answers, negate_queries=True), fx.root)
    wrong = run_suite(suite, KeyEmbedder(fx.wrong), fx.root)
    metric, value = WORST[suite]
    headline = worst.rows[-1].metrics[metric]
    assert headline == pytest.approx(value)
    if _is_rank(metric):
        assert wrong.rows[-1].metrics[metric] > 1.0
    else:
        assert wrong.rows[-1].metrics[metric] < 1.0


def test_reversed_ranks_are_exact_on_msrvtt(fixtures):
    fx = fixtures["msrvtt"]
    row = run_suite("msrvtt", KeyEmbedder(fx.answers, negate_queries=True), fx.root).rows[0].metrics
    # four videos, each caption's video ranks last (4th) in both directions
    assert row["t2v R@1"] == row["t2v R@5"] - 1.0 == 0.0
    assert row["t2v MdR"] == row["t2v MnR"] == row["v2t MdR"] == 4.0


@pytest.fixture(scope="module")
def tiny_clip():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    from umr.models.registry import load_embedder

    yield load_embedder("tiny:clip-sf")
    mp.undo()


@pytest.mark.parametrize("suite", list(SUITES))
def test_tiny_clip_sf_end_to_end(suite, fixtures, tiny_clip):
    fx = fixtures[suite]
    result = run_suite(suite, tiny_clip, fx.root, SuiteOptions(batch_size=32))
    rows, metrics = EXPECTED[suite]
    assert [r.name for r in result.rows] == rows
    assert result.model["name"] == tiny_clip.describe()["name"]
    for row in result.rows:
        assert list(row.metrics) == metrics
        for name, value in row.metrics.items():
            assert np.isfinite(value), (row.name, name)
            if _is_rank(name):
                assert 1.0 <= value <= row.n_candidates
            elif name == "RSUM":
                assert 0.0 <= value <= 6.0
            else:
                assert 0.0 <= value <= 1.0, (row.name, name, value)
    # the report times both phases, which run one after the other inside the whole (each rounded to 1 ms)
    parts = {k: v for k, v in result.timings.items() if k != "total_s"}
    assert set(parts) == {"embed_s", "score_s"}
    assert result.timings["total_s"] >= sum(parts.values()) - 0.001 * len(parts) and parts["embed_s"] > 0


def test_tiny_gme_on_composed_retrieval(fixtures):
    from umr.models.registry import load_embedder

    gme = load_embedder("tiny:gme")
    result = run_suite("cirr", gme, fixtures["cirr"].root, SuiteOptions(batch_size=16))
    m = result.row("cirr val").metrics
    assert m["R@50"] == 1.0  # 11 candidates once the reference is gone: the target is always within 50
    assert 0.0 <= m["R@1"] <= m["R@5"] <= m["R@10"] <= 1.0
    assert 0.0 <= m["Rs@1"] <= m["Rs@2"] <= m["Rs@3"] <= 1.0
    assert m["avg"] == pytest.approx((m["R@5"] + m["Rs@1"]) / 2)


def test_max_queries_and_exclude_reference_options(fixtures):
    fx = fixtures["fashioniq"]
    few = run_suite("fashioniq", KeyEmbedder(fx.answers), fx.root,
                    SuiteOptions(max_queries=2, categories=["shirt"], exclude_reference=True))
    assert [r.name for r in few.rows] == ["shirt", "mean"]
    assert few.rows[0].n_queries == 2 and few.rows[0].n_candidates == 12
    assert few.options["exclude_reference"] is True
    coco = fixtures["coco"]
    result = run_suite("coco", KeyEmbedder(coco.answers), coco.root, SuiteOptions(max_queries=5, folds=5))
    assert [r.name for r in result.rows] == ["coco 5 img", "coco 1 img (5-fold mean)"]
    assert result.rows[0].n_queries == 25  # five images, five captions each
