"""Test splits with hidden answers: the files CIRR's and CIRCO's evaluation servers take, checked against their
documented schemas (Cuberick-Orion/CIRR Test-split_server.md; miccunifi/CIRCO README, "Submission Format")."""

import json

import pytest
from suite_fixtures import KeyEmbedder, circo, png

from umr.cli import main
from umr.eval.suites import SuiteOptions, run_suite


def cirr_test1(tmp, n_sets: int = 12):
    """A CIRR test1 folder: n_sets image sets of six images (72 by default, more than the 50 a list holds)."""
    root = tmp / "cirr"
    names = [f"test1-{s}-{i % 3}-img{i % 2}" for s in range(n_sets) for i in range(6)]
    split = {}
    for i, n in enumerate(names):
        png(root / "test1" / f"{n}.png", i)
        split[n] = f"./test1/{n}.png"
    (root / "image_splits").mkdir(parents=True)
    (root / "image_splits" / "split.rc2.test1.json").write_text(json.dumps(split))
    caps, targets = [], {}
    for q in range(5):  # as in cap.rc2.test1.json: no target_hard, no target_soft
        members = names[6 * q:6 * q + 6]
        ref, tgt = members[q % 6], members[(q + 2) % 6]
        caps.append({"pairid": 12063 + q, "reference": ref, "caption": f"make it like {tgt}",
                     "img_set": {"id": q, "members": members, "reference_rank": q % 6}})
        targets[12063 + q] = tgt
    (root / "captions").mkdir()
    (root / "captions" / "cap.rc2.test1.json").write_text(json.dumps(caps))
    return root, names, caps, targets


def check_cirr(obj, metric, caps, names, depth):
    """The server's template: version and metric entries, then one list of candidate names per pairid."""
    assert obj["version"] == "rc2" and obj["metric"] == metric
    assert set(obj) == {"version", "metric"} | {str(c["pairid"]) for c in caps}
    for c in caps:
        ranked = obj[str(c["pairid"])]
        assert len(ranked) == depth and len(set(ranked)) == depth and set(ranked) <= set(names)
        assert c["reference"] not in ranked  # the reference is never a candidate of its own query
        if metric == "recall_subset":
            assert set(ranked) <= set(c["img_set"]["members"])


def test_cirr_test1_writes_recall_and_subset_files(tmp_path):
    root, names, caps, targets = cirr_test1(tmp_path)
    answers = {f"cirr:{p}": t for p, t in targets.items()}
    result = run_suite("cirr", KeyEmbedder(answers), root, SuiteOptions(split="test1"))
    assert [r.name for r in result.rows] == ["cirr test1"] and result.rows[0].metrics == {}
    assert result.rows[0].n_queries == 5 and result.rows[0].n_candidates == 72
    files = result.submissions
    assert set(files) == {"cirr_test1_recall.json", "cirr_test1_recall_subset.json"}
    check_cirr(files["cirr_test1_recall.json"], "recall", caps, names, 50)
    check_cirr(files["cirr_test1_recall_subset.json"], "recall_subset", caps, names, 3)
    for pairid, target in targets.items():  # the model's answer heads both lists
        assert files["cirr_test1_recall.json"][str(pairid)][0] == target
        assert files["cirr_test1_recall_subset.json"][str(pairid)][0] == target
    assert any("upload cirr_test1_recall.json and cirr_test1_recall_subset.json" in n for n in result.notes)
    json.dumps(files)  # plain JSON: string keys, lists of strings


def test_cirr_subset_list_with_all_scores_tied_follows_the_members_order(tmp_path):
    """Every score equal: candidates in split-file order, the reference left out (the project's tie rule)."""
    root, names, caps, _ = cirr_test1(tmp_path, n_sets=9)
    same = KeyEmbedder({f"cirr:{c['pairid']}": "x" for c in caps} | {n: "x" for n in names})
    files = run_suite("cirr", same, root, SuiteOptions(split="test1")).submissions
    for c in caps:
        corpus_order = [n for n in names if n != c["reference"]]
        assert files["cirr_test1_recall.json"][str(c["pairid"])] == corpus_order[:50]
        in_set = [n for n in corpus_order if n in c["img_set"]["members"]]
        assert files["cirr_test1_recall_subset.json"][str(c["pairid"])] == in_set[:3]


@pytest.fixture()
def circo_test(tmp_path):
    fx = circo(tmp_path)
    val = json.loads((fx.root / "annotations" / "val.json").read_text())
    test = [{k: r[k] for k in ("id", "reference_img_id", "relative_caption", "shared_concept")} for r in val]
    (fx.root / "annotations" / "test.json").write_text(json.dumps(test))  # the test file: no targets, no gts
    info = json.loads((fx.root / "COCO2017_unlabeled" / "annotations" / "image_info_unlabeled2017.json").read_text())
    return fx, val, [im["id"] for im in info["images"]]


def test_circo_test_writes_top50_image_ids_per_query(circo_test):
    fx, val, ids = circo_test
    result = run_suite("circo", KeyEmbedder(fx.answers), fx.root, SuiteOptions(split="test"))
    assert result.rows[0].metrics == {} and list(result.submissions) == ["circo_test_submission.json"]
    sub = result.submissions["circo_test_submission.json"]
    # the README's format: keys are all the query ids (as strings), values the top-50 image ids (ints)
    assert sorted(sub, key=int) == [str(r["id"]) for r in val]
    for rec in val:
        ranked = sub[str(rec["id"])]
        assert all(isinstance(i, int) for i in ranked) and set(ranked) <= set(ids)
        assert len(ranked) == len(set(ranked)) == min(50, len(ids))  # 12 images in the fixture: all of them
        assert set(ranked[:len(rec["gt_img_ids"])]) == set(rec["gt_img_ids"])  # its ground truths first
        assert rec["reference_img_id"] in ranked  # CIRCO keeps the reference in the corpus
    dropped = run_suite("circo", KeyEmbedder(fx.answers), fx.root, SuiteOptions(split="test", exclude_reference=True))
    for rec in val:
        assert rec["reference_img_id"] not in dropped.submissions["circo_test_submission.json"][str(rec["id"])]


def test_cli_writes_the_submission_files_and_says_where(circo_test, tmp_path, capsys):
    fx, _, _ = circo_test
    out = tmp_path / "out"
    assert main(["eval-suite", "--suite", "circo", "--data", str(fx.root), "--model", "random", "--split", "test",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    path = out / "circo_test_submission.json"
    assert f"submission files for the evaluation server: {path}" in printed
    assert "circo.micc.unifi.it" in printed
    sub = json.loads(path.read_text())
    assert len(sub) == 4 and all(len(v) == 12 for v in sub.values())
    assert "submissions" not in json.loads((out / "results.json").read_text())  # the lists stay in their own file
