"""Report writing, the 16-set M-BEIR average, the published comparison and the bias helpers."""

import json

import numpy as np
import pytest

from umr.eval.bias import modality_mix, wrong_modality_share
from umr.eval.mbeir import MBEIR_16, EvalReport, SetResult, headline_k
from umr.eval.metrics import Metrics
from umr.eval.published import PUBLISHED, published_for
from umr.eval.report import comparison, rows, write_results


def _report(names, value=0.5, pool="global"):
    results = [SetResult(n, n.split("_")[0], int(n[-1]), pool, 100,
                         Metrics(10, {1: value / 2, 5: value, 10: value + 0.1}, 0.3, 0.4), headline_k=5)
               for n in names]
    return EvalReport(model={"name": "m"}, data="d", options={"pool": pool, "split": "test"}, results=results)


def test_mbeir16_average_only_with_all_sixteen_sets():
    full = _report(MBEIR_16)
    full.results[2].headline_k = 10  # fashion200k reports R@10
    assert full.mbeir16_average == pytest.approx((15 * 0.5 + 0.6) / 16)
    assert _report(MBEIR_16[:15]).mbeir16_average is None
    assert rows(full)[-1][0] == "M-BEIR avg (16)"


def test_comparison_lists_published_averages_for_the_pool():
    table = comparison(_report(MBEIR_16, pool="global"))
    models = [r[0] for r in table]
    assert models[0] == "ours" and "MM-Embed" in models
    mm = next(r for r in table if r[0] == "MM-Embed")
    assert mm[-1] == "52.7" and mm[2] == "41.0"  # per-set numbers (Table 8 of U-MARVEL)
    local = [p.model for p in published_for("local")]
    assert "MM-Embed" not in local and "UniIR CLIP-SF (L)" in local
    assert all(p.source for p in PUBLISHED)


def test_headline_k_real_and_world(tmp_path):
    assert headline_k(tmp_path, "fashioniq") == 10 and headline_k(tmp_path, "cirr") == 5
    (tmp_path / "world.json").write_text(json.dumps({"datasets": [{"name": "shapefashion", "headline_k": 10}]}))
    assert headline_k(tmp_path, "shapefashion") == 10


def test_write_results(tmp_path):
    paths = write_results(_report(["a_task0", "b_task3"]), tmp_path / "out")
    assert [p.name for p in paths] == ["results.json", "results.csv", "results.md"]
    data = json.loads(paths[0].read_text())
    assert data["average"] == pytest.approx(0.5) and data["results"][1]["name"] == "b_task3"
    assert paths[1].read_text().splitlines()[-1].startswith("average (2)")


def test_bias_helpers():
    modality = np.array(["image", "text", "text", "image,text"])
    tops = [np.array([0, 1, 2]), np.array([3, 0])]
    # query 1: top-2 = image, text → 1/2 wrong; query 2: top-2 = image,text, image → 1/2 wrong
    assert wrong_modality_share(tops, modality, "image", 2) == pytest.approx(0.5)
    assert wrong_modality_share(tops, modality, "image", 1) == pytest.approx(0.5)
    assert modality_mix(tops, modality, 2) == {"image": 0.5, "image,text": 0.25, "text": 0.25}
