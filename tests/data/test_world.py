"""The generated world: deterministic, in M-BEIR's exact layout, all 8 task types, disjoint splits."""

import hashlib
import json
from pathlib import Path

import pytest

from umr.cli import main
from umr.data.mbeir import TASKS, read_pool
from umr.data.mbeir_sets import find_eval_sets, global_pool_file, instruction_table, load_eval_set, load_pool
from umr.data.world import build_world
from umr.data.world.attributes import VALUES, Obj


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "w"
    assert main(["world", "--out", str(out), "--size", "tiny", "--seed", "3"]) == 0
    return out


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(world, tmp_path):
    build_world(tmp_path / "again", size="tiny", seed=3)
    assert _digest(tmp_path / "again") == _digest(world)
    build_world(tmp_path / "other", size="tiny", seed=4)
    other = _digest(tmp_path / "other")
    assert other["world_meta.jsonl"] != _digest(world)["world_meta.jsonl"]


def test_layout_covers_every_task_type(world):
    refs = find_eval_sets(world, "test")
    assert len(refs) >= 12
    assert {r.task_id for r in refs} == set(TASKS)
    for task in (0, 2, 3, 6, 7, 8):  # two "datasets" with different styles for several task types
        assert len({r.dataset for r in refs if r.task_id == task}) >= 2
    names = {r.name for r in refs}
    assert {"shapefashion_task0", "shapefashioniq_task7", "shapecirr_task7", "shapewiki_task1"} <= names
    for split in ("train", "val"):
        assert {r.name for r in find_eval_sets(world, split)} == names


def test_every_set_loads_strictly_against_local_and_global_pools(world):
    table = instruction_table(world)
    union = load_pool(global_pool_file(world, "test"), world)
    assert {c.modality for c in union.values()} == {"text", "image", "image,text"}
    for ref in find_eval_sets(world, "test"):
        local = load_pool(ref.local_pool_file, world)
        es = load_eval_set(ref, local)  # images exist, dids known, modalities valid
        assert not es.absent
        assert set(local) <= set(union)
        qmod, cmod = TASKS[ref.task_id]
        assert {q.modality for q in es.queries} == {qmod}
        assert {local[d].modality for pos in es.positives.values() for d in pos} == {cmod}
        assert len(table[(es.queries[0].dataset_id, qmod, cmod)]) >= 3  # several instruction phrasings


def _meta(world: Path, kind: str) -> dict[str, dict]:
    rows = (json.loads(x) for x in (world / "world_meta.jsonl").read_text().splitlines())
    return {r["id"]: r["attrs"] for r in rows if r["kind"] == kind}


def _signatures(world: Path, split: str) -> tuple[set[str], set[str]]:
    meta = _meta(world, "did")
    sigs, names = set(), set()
    for c in read_pool(global_pool_file(world, split), world, check_images=False):
        attrs = meta[c.did]
        sigs.add("|".join(str(attrs[k]) for k in VALUES))
        if "name" in attrs:
            names.add(attrs["name"])
    return sigs, names


def test_splits_share_no_object_or_entity(world):
    test_sigs, test_names = _signatures(world, "test")
    for split in ("train", "val"):
        sigs, names = _signatures(world, split)
        assert not sigs & test_sigs
        assert not names & test_names


def test_pools_hold_hard_distractors(world):
    """Caption→image pools contain objects one attribute away from the queried one."""
    meta = _meta(world, "did")
    ref = next(r for r in find_eval_sets(world, "test") if r.name == "shapecoco_task0")
    pool = load_pool(ref.local_pool_file, world)
    objs = {Obj(**{k: meta[d][k] for k in VALUES}) for d in pool}
    es = load_eval_set(ref, pool)
    near = 0
    for q in es.queries:
        target = Obj(**{k: meta[q.pos[0]][k] for k in VALUES})
        near += sum(1 for n in target.neighbours() if n in objs)
    assert near >= len(es.queries)  # on average at least one one-attribute neighbour per target


def test_composed_queries_describe_the_edit(world):
    ref = next(r for r in find_eval_sets(world, "test") if r.name == "shapefashioniq_task7")
    es = load_eval_set(ref, load_pool(ref.local_pool_file, world))
    meta = _meta(world, "qid")
    for q in es.queries:
        ref_attrs, tgt = meta[q.qid]["reference"], meta[q.qid]["target"]
        changed = [k for k in VALUES if ref_attrs[k] != tgt[k]]
        assert 1 <= len(changed) <= 2 and set(changed) <= {"colour", "size", "pattern"}
        assert q.img_path and q.txt


def test_bad_size_is_a_user_error(tmp_path, capsys):
    assert main(["world", "--out", str(tmp_path / "w"), "--size", "tiny", "--image-size", "4"]) == 2
    assert "image-size" in capsys.readouterr().err


def test_each_dataset_has_its_own_look_so_the_global_pool_holds_no_copy_of_a_positive(world):
    """Two datasets may draw the same object; their images must still differ, as M-BEIR's domains do, or the
    global pool would hold an unlabelled pixel-identical copy of a query's positive (issue 20)."""
    from PIL import Image

    from umr.data.world.writer import DATASETS

    union = read_pool(global_pool_file(world, "test"))
    digests: dict[str, str] = {}
    for cand in union:
        if cand.img_path:
            digest = hashlib.sha256((world / cand.img_path).read_bytes()).hexdigest()
            # one picture may serve several cards of its dataset (an entity's facts); never another file
            assert digests.setdefault(digest, cand.img_path) == cand.img_path, f"{cand.img_path} repeats another"
    for spec in DATASETS:
        paths = sorted((world / "images" / spec.name / "test").glob("*.png"))
        assert paths, spec.name
        corner = Image.open(paths[0]).convert("RGB").getpixel((1, 1))
        if spec.frame is None:
            assert corner != (0, 0, 0) and all(corner != s.frame for s in DATASETS)
        else:
            assert corner == spec.frame, spec.name
    frames = [s.frame for s in DATASETS if s.frame is not None]
    assert len(set(frames)) == len(frames)


def test_plain_world_draws_no_looks(tmp_path):
    """The tiny bases' pretraining world (looks=False) draws every dataset alike: corner = the object's ground."""
    from PIL import Image

    from umr.data.world.attributes import BACKGROUNDS

    meta = build_world(tmp_path / "plain", size="tiny", seed=3, looks=False)
    assert meta["looks"] is False
    paths = sorted((tmp_path / "plain" / "images").rglob("*.png"))
    for path in paths[::25]:
        ground = path.stem.rsplit("_v", 1)[0].split("-")[-1]
        assert Image.open(path).convert("RGB").getpixel((1, 1)) == BACKGROUNDS[ground], path.name
