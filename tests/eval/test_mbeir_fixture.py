"""End to end on a fixture in the real M-BEIR layout, with recall computed by hand (see the comments)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from umr.cli import main
from umr.data.mbeir import MBEIRFormatError
from umr.eval.mbeir import EvalOptions, evaluate

# Colour vectors: red (1,0,0), green (0,1,0), blue (0,0,1), yellow (1,1,0)/√2, teal (0,1,1)/√2.
# mscoco_task0, local pool = 5 images (red, green, blue, yellow, teal):
#   "a red square"    → red image scores 1, best              rank 1
#   "a yellow square" → yellow image scores 1, best           rank 1
#   "a blue square"   → labelled positive is the green image: score ≈0, a hair below red and yellow (the
#                       embedder's 1e-12 offset) and below blue (1) and teal (.71) → rank 5
#                       (exact ties: test_mbeir_ties.py)
#   "a teal square"   → its only positive 5:99 is another dataset's did, not in the pool → counted as a miss
# → R@1 = 2/4, R@5 = 3/4, MRR@10 = (1 + 1 + 1/5 + 0) / 4 = 0.55


def test_local_pool_hand_computed(mbeir_mini, colour_embedder):
    report = evaluate(colour_embedder, mbeir_mini, EvalOptions(pool="local", ks=(1, 5, 10)))
    res = {r.name: r for r in report.results}
    assert list(res) == ["mscoco_task0", "webqa_task1"]  # sorted by task id
    coco = res["mscoco_task0"].metrics
    assert coco.recall == {1: 0.5, 5: 0.75, 10: 0.75}
    assert coco.mrr10 == pytest.approx(0.55)
    assert coco.n_queries == 4 and coco.n_no_positive_in_pool == 1 and coco.n_positives_absent == 1
    assert res["mscoco_task0"].n_pool == 5  # the split-specific MSCOCO pool was used
    assert res["webqa_task1"].metrics.recall[1] == 1.0
    assert res["mscoco_task0"].headline_k == 5 and report.mbeir16_average is None
    assert res["mscoco_task0"].wrong_modality is None  # bias is a global-pool measure


# Global pool adds the WebQA passages "red" and "green" (text). "a red square" now ties the red image with the
# text "red" → rank 2 (and its top-1 has the wrong modality). "a blue square": 6 negatives score ≥ 0 → rank 7.
# → R@1 = 1/4, R@5 = 2/4; top-1 wrong modality = 1/4 of the queries.


def test_global_pool_hand_computed(mbeir_mini, colour_embedder):
    report = evaluate(colour_embedder, mbeir_mini, EvalOptions(pool="global", ks=(1, 5, 10)))
    coco = {r.name: r for r in report.results}["mscoco_task0"]
    assert coco.n_pool == 7
    assert coco.metrics.recall == {1: 0.25, 5: 0.5, 10: 0.75}
    assert coco.wrong_modality_top1 == pytest.approx(0.25)
    # every query's top-7 holds both passages (2 of 7 are text)
    assert coco.wrong_modality == pytest.approx(2 / 7)


def test_cli_writes_results_and_refuses_bad_data(mbeir_mini, colour_embedder, tmp_path, monkeypatch, capsys):
    from umr.models import registry

    monkeypatch.setattr(registry, "load_embedder", lambda *a, **k: colour_embedder)
    out = tmp_path / "run"
    assert main(["eval", "--model", "random", "--data", str(mbeir_mini), "--out", str(out), "--k", "1", "5",
                 "--compare", "published"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["results"][0]["recall"] == {"1": 0.5, "5": 0.75}
    assert (out / "results.csv").read_text().splitlines()[1].startswith("mscoco_task0,0,4,5,50.0,75.0")
    assert "| mscoco_task0 | 0 | 4 | 5 | 50.0 | 75.0 |" in (out / "results.md").read_text()
    assert "nothing to compare" in capsys.readouterr().out
    assert any((out / "cache").iterdir())
    # a missing image is reported with its file and line
    (mbeir_mini / "mbeir_images/mscoco_images/val2014/teal.png").unlink()
    assert main(["eval", "--model", "random", "--data", str(mbeir_mini), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "mbeir_mscoco_task0_test_cand_pool.jsonl:5" in err and "image not found" in err


def test_unknown_same_dataset_did_stops_the_run(mbeir_mini, colour_embedder):
    qrels = mbeir_mini / "qrels/test/mbeir_mscoco_task0_test_qrels.txt"
    qrels.write_text(qrels.read_text().replace("9:4 0 5:99", "9:4 0 9:99"))
    with pytest.raises(MBEIRFormatError, match=r"mbeir_mscoco_task0_test_qrels.txt:4: 9:4: unknown did '9:99'"):
        evaluate(colour_embedder, mbeir_mini, EvalOptions(tasks=["mscoco"]))
    lenient = evaluate(colour_embedder, mbeir_mini, EvalOptions(tasks=["mscoco"], strict=False, ks=(5,)))
    assert lenient.results[0].metrics.recall == {5: 0.75}


def test_embedding_cache_resumes(mbeir_mini, colour_embedder, tmp_path):
    opts = EvalOptions(pool="global", ks=(1, 5), cache_dir=tmp_path / "cache")
    first = evaluate(colour_embedder, mbeir_mini, opts)
    calls = colour_embedder.calls
    assert calls == 7 + 5  # 7 candidates once, 4 + 1 queries
    second = evaluate(colour_embedder, mbeir_mini, opts)
    assert colour_embedder.calls == calls  # everything came from the cache
    assert [r.metrics.recall for r in first.results] == [r.metrics.recall for r in second.results]
    evaluate(colour_embedder, mbeir_mini, EvalOptions(pool="global", ks=(1, 5), cache_dir=tmp_path / "cache",
                                                       instructions=False))
    assert colour_embedder.calls == calls + 5  # other query settings → queries embedded again, pool reused


def test_compare_published_on_a_real_layout_root(tmp_path, capsys):
    """All 16 real set names → `--compare published` prints the papers' per-set numbers beside ours."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
    from mbeir_real import build_real_layout

    from umr.eval.mbeir import MBEIR_16

    root = build_real_layout(tmp_path / "M-BEIR")
    out = tmp_path / "run"
    assert main(["eval", "--model", "random", "--data", str(root), "--out", str(out), "--compare", "published",
                 "--no-cache"]) == 0
    printed = capsys.readouterr().out
    assert "nothing to compare" not in printed and "Published M-BEIR numbers (local pool" in printed
    data = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in data["results"]] == sorted(MBEIR_16, key=lambda n: (int(n[-1]), n))
    assert data["mbeir16_average"] is not None
    md = (out / "results.md").read_text()
    # CLIP-SF's MSCOCO text→image (81.1) and U-MARVEL's average (63.2) sit in the rows of their sets
    coco = next(line for line in md.splitlines() if line.startswith("| mscoco_task0 |") and "81.1" in line)
    assert coco.count("|") == 1 + 2 + 6 and "| 84.4 |" in coco  # set, ours, the 6 models with local numbers
    assert "| avg (16) |" in md and "| 63.2 |" in md
    published = printed.split("Published M-BEIR numbers", 1)[1]
    iq = next(line for line in published.splitlines() if "fashioniq_task7" in line)
    assert "24.4" in iq and "36.4" in iq  # CLIP-SF's and U-MARVEL's R@10 on the terminal too


def test_float16_cache_gives_the_float32_rankings_with_half_the_vectors(world_tiny, tmp_path):
    """--store-dtype float16 (UniIR's choice): the vectors are kept at half the size, searched through a memory map,
    and on the tiny world every set's recall at every cut-off matches the float32 run's within one query."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "index"))
    from hash_embedder import HashEmbedder

    runs, vectors = {}, {}
    for dtype in ("float32", "float16"):
        cache = tmp_path / dtype
        runs[dtype] = evaluate(HashEmbedder(), world_tiny, EvalOptions(pool="global", cache_dir=cache,
                                                                        store_dtype=dtype, check_images=False))
        vectors[dtype] = np.load(next(cache.glob("pool-global-test-*")) / "embeddings.npy", mmap_mode="r")
    assert vectors["float16"].dtype == np.float16 and vectors["float32"].dtype == np.float32
    assert vectors["float16"].nbytes * 2 == vectors["float32"].nbytes
    assert not np.array_equal(vectors["float16"].astype(np.float32), vectors["float32"])  # really rounded
    for a, b in zip(runs["float32"].results, runs["float16"].results, strict=True):
        n = a.metrics.n_queries
        for k in (1, 5, 10, 50):
            assert abs(a.metrics.recall[k] - b.metrics.recall[k]) <= 1 / n + 1e-9, (a.name, k)
