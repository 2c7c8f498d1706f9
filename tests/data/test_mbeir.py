"""M-BEIR readers and writers: round trip, and every validation error names its file and line."""

import json

import pytest
from PIL import Image

from umr.data.mbeir import (
    Candidate,
    MBEIRFormatError,
    Query,
    read_instructions,
    read_pool,
    read_qrels,
    read_queries,
    task_id_for,
    write_instructions,
    write_pool,
    write_qrels,
    write_queries,
)
from umr.data.mbeir_sets import EvalSetRef, find_eval_sets, load_eval_set, load_pool


@pytest.fixture
def root(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "images" / "red.png")
    return tmp_path


def _lines(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_round_trip(root):
    cands = [Candidate("9:1", "image", None, "images/red.png"), Candidate("9:2", "text", "a red square")]
    queries = [Query("9:1", "text", "red", None, pos=["9:1"], task_id=0)]
    pool = write_pool(root / "cand_pool/local/mbeir_x_task0_cand_pool.jsonl", cands)
    qf = write_queries(root / "query/test/mbeir_x_task0_test.jsonl", queries)
    write_qrels(root / "qrels/test/mbeir_x_task0_test_qrels.txt", queries)
    assert [c.did for c in read_pool(pool, root)] == ["9:1", "9:2"]
    got = read_queries(qf, root)[0]
    assert (got.qid, got.pos, got.task_id, got.line) == ("9:1", ["9:1"], 0, 1)
    assert read_qrels(root / "qrels/test/mbeir_x_task0_test_qrels.txt").relevant == {"9:1": ["9:1"]}
    item = read_pool(pool, root)[0].to_item(root)
    assert item.modality == "image" and item.image == str(root / "images/red.png")
    # keys are sorted, so the bytes do not depend on dict order
    assert qf.read_text().startswith('{"neg_cand_list": [], "pos_cand_list": ["9:1"], "qid": "9:1"')


def test_instructions_round_trip(tmp_path):
    path = write_instructions(tmp_path / "i.tsv", [("text", "image", "X", "9", ["Find it.", "Get it."]),
                                                   ("image", "text", "X", "9", ["Caption it."])])
    assert path.read_text().splitlines()[0].split("\t")[:5] == [
        "query_modality", "cand_modality", "dataset_name", "dataset_id", "prompt_1"]
    assert read_instructions(path) == {("9", "text", "image"): ["Find it.", "Get it."],
                                       ("9", "image", "text"): ["Caption it."]}


@pytest.mark.parametrize("row, message", [
    ('{"did": "9:1", "modality": "text", "txt": "a"', "malformed JSON"),
    ({"did": "9:1", "modality": "video", "txt": "a"}, "bad modality 'video'"),
    ({"did": "9:1", "modality": "text,image", "txt": "a", "img_path": "images/red.png"}, "bad modality"),
    ({"did": "9:1", "modality": "image", "img_path": "images/missing.png"}, "image not found"),
    ({"did": "9:1", "modality": "image"}, "no image path"),
    ({"did": "9:1", "modality": "text", "txt": ""}, "no text"),
    ({"did": 7, "modality": "text", "txt": "a"}, "did must be"),
    ({"did": "9:0", "modality": "text", "txt": "a"}, r"duplicate did '9:0' \(first on line 1\)"),
])
def test_pool_errors_name_file_and_line(root, row, message):
    path = _lines(root / "pool.jsonl", [{"did": "9:0", "modality": "text", "txt": "x"}, row])
    with pytest.raises(MBEIRFormatError, match=message) as info:
        read_pool(path, root)
    assert str(info.value).startswith(f"{path}:2: ")


def test_query_errors(root):
    ok = {"qid": "9:1", "query_modality": "text", "query_txt": "red", "pos_cand_list": ["9:1"]}
    path = _lines(root / "q.jsonl", [ok, ok])
    with pytest.raises(MBEIRFormatError, match=rf"{path}:2: duplicate qid"):
        read_queries(path, root)
    path = _lines(root / "q.jsonl", [dict(ok, pos_cand_list="9:1")])
    with pytest.raises(MBEIRFormatError, match=rf"{path}:1: .*must be a list"):
        read_queries(path, root)


def test_qrels_errors(tmp_path):
    path = _lines(tmp_path / "q.txt", ["9:1 0 9:1 1 0", "9:1 0 9:1 1 0"])
    with pytest.raises(MBEIRFormatError, match=rf"{path}:2: duplicate pair"):
        read_qrels(path)
    path = _lines(tmp_path / "q.txt", ["9:1 0 9:1 yes 0"])
    with pytest.raises(MBEIRFormatError, match=rf"{path}:1: relevance"):
        read_qrels(path)
    qrels = read_qrels(_lines(tmp_path / "q.txt", ["9:1 0 9:1 1 0", "9:1 0 9:2 0 0"]))
    assert qrels.relevant == {"9:1": ["9:1"]} and qrels.task_of == {"9:1": 0}


def _eval_root(root, qrels_lines):
    _lines(root / "query/test/mbeir_x_task0_test.jsonl", [
        {"qid": "9:1", "query_modality": "text", "query_txt": "red", "pos_cand_list": ["9:1"]},
        {"qid": "9:2", "query_modality": "text", "query_txt": "blue", "pos_cand_list": ["9:2"]}])
    _lines(root / "cand_pool/local/mbeir_x_task0_cand_pool.jsonl", [
        {"did": "9:1", "modality": "image", "img_path": "images/red.png"},
        {"did": "9:2", "modality": "text", "txt": "blue"}])
    if qrels_lines:
        _lines(root / "qrels/test/mbeir_x_task0_test_qrels.txt", qrels_lines)
    ref = find_eval_sets(root, "test")[0]
    return ref, load_pool(ref.local_pool_file, root)


def test_unknown_did_in_qrels_names_the_line(root):
    ref, pool = _eval_root(root, ["9:1 0 9:1 1 0", "9:2 0 9:77 1 0"])
    with pytest.raises(MBEIRFormatError, match=r"mbeir_x_task0_test_qrels.txt:2: 9:2: unknown did '9:77'"):
        load_eval_set(ref, pool)


def test_unknown_did_in_pos_list_names_the_line(root):
    ref, pool = _eval_root(root, None)
    pool.pop("9:2")
    with pytest.raises(MBEIRFormatError, match=r"mbeir_x_task0_test.jsonl:2: 9:2: unknown did '9:2'"):
        load_eval_set(ref, pool)


def test_other_dataset_positive_is_kept_as_absent(root):
    ref, pool = _eval_root(root, ["9:1 0 9:1 1 0", "9:2 0 9:2 1 0", "9:2 0 5:3 1 0"])
    es = load_eval_set(ref, pool)
    assert es.positives["9:2"] == ["9:2", "5:3"] and es.absent == {"9:2": ["5:3"]}


def test_find_eval_sets_filters_and_split_specific_pool(root):
    ref, _ = _eval_root(root, None)
    assert ref == EvalSetRef(root, "x", 0, "test") and ref.name == "x_task0"
    specific = _lines(root / "cand_pool/local/mbeir_x_task0_test_cand_pool.jsonl", [])
    assert ref.local_pool_file == specific  # M-BEIR's MSCOCO keeps one pool per split
    assert find_eval_sets(root, "test", ["task0"]) == [ref]
    with pytest.raises(ValueError, match="no eval set"):
        find_eval_sets(root, "test", ["task7"])


def test_task_ids():
    assert task_id_for("image,text", "image") == 7
    with pytest.raises(ValueError):
        task_id_for("image", "image,text")
