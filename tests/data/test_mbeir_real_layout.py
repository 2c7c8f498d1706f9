"""The real download's training layout: the world writes it, one reader serves it (UniIR's union file, filters),
and the lines UniIR accepts are accepted. UniIR's rules are transcribed here from its code (TIGER-AI-Lab/UniIR:
src/data/mbeir_dataset.py, src/data/preprocessing/utils.py, src/data/mbeir_data_generator.py)."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from umr.data.mbeir import TASKS, format_text, read_pool, read_qrels, read_queries
from umr.data.mbeir_sets import (
    find_eval_sets,
    global_pool_file,
    load_eval_set,
    load_pool,
    load_set_pool,
    union_train_file,
)
from umr.data.world import DATASETS, build_world
from umr.train.data import read_mbeir_root_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from mbeir_real import build_real_layout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("w") / "tiny"
    build_world(out, size="tiny", seed=0)
    return out


@pytest.fixture
def real(world: Path, tmp_path: Path) -> Path:
    return build_real_layout(tmp_path / "M-BEIR", world)


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_world_writes_the_real_training_layout(world):
    train = world / "query" / "train"
    assert sorted(p.name for p in train.iterdir()) == sorted(f"mbeir_{d.name}_train.jsonl" for d in DATASETS)
    assert not list((world / "cand_pool" / "local").glob("*_train_cand_pool.jsonl"))  # the download has none
    per_dataset = [line for d in DATASETS for line in _lines(train / f"mbeir_{d.name}_train.jsonl")]
    assert _lines(union_train_file(world)) == per_dataset  # balanced datasets: the plain union
    pool = {c.did: c for c in read_pool(global_pool_file(world, "train"), world, check_images=False)}
    for line in per_dataset:
        assert set(line["pos_cand_list"] + line["neg_cand_list"]) <= set(pool)
        # every line carries its task, which the positive's modality confirms (UniIR's assign_task_ids)
        assert TASKS[line["task_id"]] == (line["query_modality"], pool[line["pos_cand_list"][0]].modality)
    for d in DATASETS:
        qrels = read_qrels(world / "qrels" / "train" / f"mbeir_{d.name}_train_qrels.txt")
        assert set(qrels.relevant) == {x["qid"] for x in _lines(train / f"mbeir_{d.name}_train.jsonl")}


def test_train_sets_are_their_share_of_the_global_train_pool(world):
    refs = find_eval_sets(world, "train")
    assert {r.name for r in refs} == {r.name for r in find_eval_sets(world, "test")}
    union = load_pool(global_pool_file(world, "train"), world, check_images=False)
    seen: set[str] = set()
    for ref in refs:
        pool = load_set_pool(ref)
        es = load_eval_set(ref, pool)  # strict: every positive in the set's pool, images on disk
        assert es.queries and all(q.task_id == ref.task_id for q in es.queries)
        assert {c.modality for c in pool.values()} == {TASKS[ref.task_id][1]}
        assert seen.isdisjoint(pool)
        seen |= set(pool)
    assert seen == set(union)  # the sets' pools split the global train pool


def test_union_file_pairs_with_filters_and_repeats(real):
    union = union_train_file(real)
    lines = _lines(union)
    webqa = next(x for x in lines if x["qid"].startswith("2:") and x["task_id"] == 1)
    other = next(x for x in lines if x["qid"].startswith("2:") and x["task_id"] == 1 and x["qid"] != webqa["qid"])
    webqa["pos_cand_list"] = webqa["pos_cand_list"] + other["pos_cand_list"]
    union.write_text("".join(json.dumps(x) + "\n" for x in lines + [webqa, webqa]))  # up-sampled: 3 copies
    pairs = read_mbeir_root_pairs(real, seed=5)
    assert len(pairs) == len(lines) + 2
    copies = [p for p in pairs if p.query.id == webqa["qid"]]
    # the n-th copy takes the n-th positive (UniIR draws one at random) and its own instruction draw
    assert [p.positive.text for p in copies] == [_text(real, d) for d in webqa["pos_cand_list"] * 2][:3]
    prompts = _prompts(real, "2", "text", "text")
    keys = [f"5:{webqa['qid']}", f"5:{webqa['qid']}:1", f"5:{webqa['qid']}:2"]
    assert [p.query.instruction for p in copies] == [prompts[random.Random(k).randrange(len(prompts))] for k in keys]
    coco = read_mbeir_root_pairs(real, datasets=["mscoco"])
    assert {p.query.id.split(":")[0] for p in coco} == {"9"}
    coco3 = read_mbeir_root_pairs(real, datasets=["mscoco"], tasks=["task3"])
    assert coco3 and {p.query.modality for p in coco3} == {"image"} and len(coco3) < len(coco)
    assert {p.query.id for p in read_mbeir_root_pairs(real, tasks=["webqa_task2"])} == \
        {x["qid"] for x in lines if x["qid"].startswith("2:") and x["task_id"] == 2}
    with pytest.raises(ValueError, match="no training queries"):
        read_mbeir_root_pairs(real, datasets=["nosuch"])


def _text(root: Path, did: str) -> str:
    return next(c.txt for c in read_pool(global_pool_file(root, "train"), root, check_images=False) if c.did == did)


def _prompts(root: Path, dsid: str, qmod: str, cmod: str) -> list[str]:
    rows = (line.split("\t") for line in (root / "instructions/query_instructions.tsv").read_text().splitlines()[1:])
    return next([p for p in r[4:] if p] for r in rows if (r[3], r[0], r[1]) == (dsid, qmod, cmod))


def _uniir_format_string(s):
    # transcribed from UniIR src/data/preprocessing/utils.py: format_string
    s = (s or "").replace("\r", "").strip().strip('"')
    if s:
        s = s[0].upper() + s[1:]
        s = s + "." if s[-1] not in [".", "?", "!"] else s
    return s


@pytest.mark.parametrize("text", ["a red circle", "  What is it?\r\n", '"quoted caption"', "", None, "ends!",
                                  "x", "Already.", " \"a\" ", "multi\nline text "])
def test_format_text_matches_uniir(text):
    assert format_text(text) == _uniir_format_string(text)


def test_lines_uniir_accepts(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"did": "wiki:p1", "modality": "image,text", "txt": "", "img_path": "a.png"}) + "\n")
    cand = read_pool(pool, tmp_path)[0]  # empty text on an image,text candidate; an id that is not int:int
    item = cand.to_item(tmp_path)
    assert item.text is None and item.image == str(tmp_path / "a.png")
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"qid": "wiki:q1", "query_modality": "text", "query_txt": "who?",
                                   "pos_cand_list": ["wiki:p1"]}) + "\n")
    assert read_queries(queries, tmp_path)[0].pos == ["wiki:p1"]
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("wiki:q1 0 wiki:p1 1\n")  # 4 fields: no task id
    assert read_qrels(qrels).relevant == {"wiki:q1": ["wiki:p1"]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"did": "1:1", "modality": "text", "txt": ""}) + "\n")
    with pytest.raises(ValueError, match="no text"):  # a text candidate still needs its text
        read_pool(bad, tmp_path)


def test_oven_and_infoseek_train_sets_share_their_candidates(real):
    """U-MARVEL's local training pools (get_training_data_local_format.ipynb) give OVEN's and InfoSeek's sets
    both datasets' candidates of the task's modality, since each lists the other's as positives."""
    refs = {r.name: r for r in find_eval_sets(real, "train")}
    oven, seek = load_set_pool(refs["oven_task6"]), load_set_pool(refs["infoseek_task6"])
    assert set(oven) == set(seek) and {d.split(":")[0] for d in oven} == {"5", "6"}
    assert {c.modality for c in oven.values()} == {"text"}
    assert {d.split(":")[0] for d in load_set_pool(refs["webqa_task1"])} == {"2"}


def test_eval_lists_the_roots_splits_and_runs_any_of_them(real, tmp_path, capsys):
    """A root as the training download leaves it (no test split) named no split; --split took only val or test."""
    import shutil

    from umr.cli import main

    for folder in ("query", "qrels"):
        shutil.rmtree(real / folder / "test")
    assert main(["eval", "--model", "random", "--data", str(real), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert f"{real}: no split 'test' with queries (query/test/); it has val, train" in err
    assert main(["eval", "--model", "random", "--data", str(real), "--split", "../query",
                 "--out", str(tmp_path / "a")]) == 2
    assert "no split '../query'" in capsys.readouterr().err
    assert main(["eval", "--model", "random", "--data", str(real), "--split", "train", "--tasks", "mscoco",
                 "--no-cache", "--out", str(tmp_path / "b")]) == 0
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["options"]["split"] == "train"
    assert {(r["name"], r["n_queries"]) for r in results["results"]} == {("mscoco_task0", 24), ("mscoco_task3", 24)}
