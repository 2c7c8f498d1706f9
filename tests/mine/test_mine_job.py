"""`umr mine` on a tiny world with the oracle/random embedders: positives out, rows readable as training pairs,
quotas honoured, the summary's counts equal the rows', and a rerun resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umr.cli import main
from umr.data.world import build_world
from umr.mine.job import done_qids, mine, resume_output
from umr.mine.negatives import MineOptions
from umr.train.data import read_pairs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mine") / "world"
    build_world(root, "tiny", seed=3)
    return root


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _qrels(root: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in (root / "qrels" / "train").glob("*.txt"):
        for line in f.read_text().splitlines():
            qid, _, did, *_ = line.split()
            out.setdefault(qid, set()).add(did)
    return out


def test_mined_rows_exclude_positives_and_feed_training(world: Path, tmp_path: Path) -> None:
    from umr.models.baselines import RandomEmbedder

    out = tmp_path / "neg.jsonl"
    s = mine(RandomEmbedder(), world, out, pool="global", tasks=["task0", "task1"], opts=MineOptions(top=30, take=4))
    rows = _rows(out)
    qrels = _qrels(world)
    assert s.written == len(rows) > 0 and s.negatives == sum(len(r["negatives"]) for r in rows)
    for r in rows:
        assert len(r["negatives"]) == 4
        assert not {m["did"] for m in r["mined"]} & qrels[r["qid"]]
        ranks = [m["rank"] for m in r["mined"]]
        assert ranks == sorted(ranks) and all(1 <= k <= 30 for k in ranks)
        assert r["positive"]["id"] in qrels[r["qid"]]
    pairs = read_pairs(out)  # the training loader reads the file as-is
    assert len(pairs) == len(rows) and all(len(p.negatives) == 4 for p in pairs)
    assert pairs[0].query.instruction  # the task instruction travels with the query


def test_fn_filter_count_matches_rows(world: Path, tmp_path: Path) -> None:
    from umr.models.baselines import RandomEmbedder

    out = tmp_path / "neg.jsonl"
    opts = MineOptions(top=40, take=4, fn_ratio=1.0, modality_aware=True, wrong_quota=2)
    s = mine(RandomEmbedder(), world, out, pool="global", tasks=["task0"], opts=opts)
    rows = _rows(out)
    assert s.fn_dropped == sum(r["fn_dropped"] for r in rows) > 0
    for r in rows:
        # ratio 1: no image (task0's modality) above the positive; other modalities are never false negatives
        assert all(m["score"] <= r["positive_score"] + 1e-6 for m in r["mined"] if m["modality"] == "image")


def test_modality_quota_tops_up_with_wrong_ones_when_right_ones_run_out(world: Path, tmp_path: Path) -> None:
    """take 4, wrong quota 2, task0 wants images. From each query's top-8 (positives removed):
    ≥ 2 images and ≥ 2 others → exactly the 2 best others + the 2 best images (the quota binds);
    < 2 images → every image + the best others up to 4 (top-up: more wrong ones than the quota);
    < 2 others → every other + the best images up to 4."""
    from umr.models.baselines import RandomEmbedder
    from umr.retrieval import retrieve

    out, cache = tmp_path / "neg.jsonl", tmp_path / "cache"
    opts = MineOptions(top=8, take=4, modality_aware=True, wrong_quota=2)
    mine(RandomEmbedder(), world, out, pool="global", tasks=["task0"], opts=opts, cache_dir=cache)
    taken = {r["qid"]: [m["did"] for m in r["mined"]] for r in _rows(out)}
    qrels = _qrels(world)
    cases = {"quota": 0, "top-up": 0, "few-wrong": 0}
    for _, _, view, retrieved in retrieve(RandomEmbedder(), world, "train", "global", ["task0"], 8, cache):
        for r in retrieved:
            ranked = [view.dids[i] for i in r.rows if view.dids[i] not in qrels[r.query.qid]]
            right = [d for d in ranked if view.modality[view.row[d]] == "image"]
            wrong = [d for d in ranked if view.modality[view.row[d]] != "image"]
            if len(right) >= 2 and len(wrong) >= 2:
                case, want = "quota", wrong[:2] + right[:2]
            elif len(right) < 2:
                case, want = "top-up", right + wrong[:4 - len(right)]
            else:
                case, want = "few-wrong", wrong + right[:4 - len(wrong)]
            cases[case] += 1
            assert sorted(taken[r.query.qid], key=ranked.index) == sorted(want, key=ranked.index), (r.query.qid, case)
            if case == "top-up":
                assert sum(d in wrong for d in taken[r.query.qid]) > opts.quota
    assert cases["quota"] > 0 and cases["top-up"] > 0  # the world's random top-8 lists exercise both branches


def test_cli_resumes_without_duplicates(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "neg.jsonl"
    args = ["mine", "--model", "oracle", "--data", str(world), "--pool", "local", "--tasks", "task3", "--top", "10",
            "--take", "2", "--out", str(out)]
    assert main(args) == 0
    full = out.read_text()
    lines = full.splitlines(keepends=True)
    out.write_text("".join(lines[:5]) + lines[5][:17])  # a crash mid-line
    assert main(args) == 0
    assert out.read_text() == full
    summary = json.loads(out.with_name(out.name + ".summary.json").read_text())
    assert summary["resumed"] == 5 and summary["written"] == len(lines) - 5


def test_done_qids_only_reads_and_resume_output_cuts_a_torn_line(tmp_path: Path) -> None:
    out = tmp_path / "neg.jsonl"
    torn = '{"qid": "1:1"}\n{"qid": "1:2"}\n{"qid": "1:3", "neg'
    out.write_text(torn)
    assert done_qids(out) == {"1:1", "1:2"}
    assert out.read_text() == torn  # a getter leaves the file as it found it
    assert resume_output(out) == {"1:1", "1:2"}
    assert out.read_text() == '{"qid": "1:1"}\n{"qid": "1:2"}\n'  # ready to append: the torn line is rewritten
    assert done_qids(tmp_path / "none.jsonl") == resume_output(tmp_path / "none.jsonl") == set()
