"""`umr eval` and `umr mine` under torchrun with 2 CPU processes (gloo): every rank embeds its shards of the pool
and of each query set through the cache, rank 0 searches and writes once; the outputs equal a one-process run's,
and a rank killed mid-job is resumed by rerunning the same command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "index"))
from test_index_cli import subprocess_env, umr_command  # noqa: E402

TORCHRUN = Path(sys.executable).parent / "torchrun"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not TORCHRUN.exists(), reason="no torchrun")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from umr.data.world import build_world

    root = tmp_path_factory.mktemp("dist") / "world"
    build_world(root, "tiny", seed=0)  # 680 global test candidates, 160 queries over 16 sets
    return root


def _run(args: list[str], procs: int, **env: str) -> subprocess.CompletedProcess:
    e = subprocess_env(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", **env)
    if procs == 1:
        cmd = umr_command(*args)
    else:
        cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", str(procs), "--no-python", *umr_command(*args)]
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=600)


def _eval_args(world: Path, out: Path, model: str = "py:hash_embedder:HashEmbedder") -> list[str]:
    return ["eval", "--model", model, "--data", str(world), "--pool", "global", "--shard-size", "40",
            "--skip-image-check", "--out", str(out)]


def _results(out: Path) -> dict:
    report = json.loads((out / "results.json").read_text())
    return {"average": report["average"], "results": report["results"]}


def _ranks(cache: Path) -> set[int]:
    return {s["rank"] for job in cache.iterdir() for s in json.loads((job / "manifest.json").read_text())["shards"]}


def test_two_ranks_equal_one_and_a_killed_rank_resumes(world: Path, tmp_path: Path) -> None:
    one = _run(_eval_args(world, tmp_path / "one"), 1)
    assert one.returncode == 0, one.stderr[-3000:]

    crashed = _run(_eval_args(world, tmp_path / "two", "py:hash_embedder:RankCrashHashEmbedder"), 2,
                   UMR_TEST_CRASH_RANK="1", UMR_TEST_CRASH_BATCH="4")
    assert crashed.returncode != 0 and not (tmp_path / "two" / "results.json").exists()
    pool_job = next((tmp_path / "two" / "cache").glob("pool-global-test-*"))
    # a shard is finished once its .json record is written; a kill between its .npy and its record leaves a
    # .npy that the resumed run rightly re-embeds (a race that a loaded machine hits), so only recorded ones count
    before = {p.name: p.stat().st_mtime_ns for p in (pool_job / "shards").glob("*.npy")
              if p.with_suffix(".json").exists()}
    assert before, "shards finished before the kill"

    resumed = _run(_eval_args(world, tmp_path / "two"), 2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = {p.name: p.stat().st_mtime_ns for p in (pool_job / "shards").glob("*.npy")}
    assert all(after[name] == t for name, t in before.items()), "finished shards were kept, not re-embedded"
    assert len(after) == 17  # 680 candidates in shards of 40
    assert _ranks(tmp_path / "two" / "cache") == {0, 1}, "both ranks embedded"
    assert _results(tmp_path / "two") == _results(tmp_path / "one")
    assert resumed.stdout.count("wrote ") == 1, "rank 0 alone reports and writes"


def test_mining_under_two_ranks_writes_the_one_process_file_once(world: Path, tmp_path: Path) -> None:
    out = {}
    for procs in (1, 2):
        path = tmp_path / f"neg{procs}.jsonl"
        run = _run(["mine", "--model", "py:hash_embedder:HashEmbedder", "--data", str(world), "--split", "train",
                    "--pool", "global", "--top", "20", "--take", "3", "--out", str(path)], procs)
        assert run.returncode == 0, run.stderr[-3000:]
        out[procs] = path.read_text().splitlines()
        shutil.rmtree(path.with_name(path.name + ".cache"))
    assert out[2] == out[1] and len(out[1]) > 50


TEACHER = """
import sys
from hash_embedder import HashEmbedder
from umr.train.distill import build_teacher
build_teacher(HashEmbedder(), sys.argv[1], sys.argv[2], top=8, pool="global", cache_dir=sys.argv[2] + ".cache")
"""


def test_a_distillation_teacher_under_two_ranks_writes_the_one_process_lists_once(world: Path,
                                                                                  tmp_path: Path) -> None:
    out = {}
    for procs in (1, 2):
        path = tmp_path / f"teacher{procs}.jsonl"
        cmd = [sys.executable, "-c", TEACHER, str(world), str(path)]
        if procs == 2:
            cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "--no-python", *cmd]
        run = subprocess.run(cmd, env=subprocess_env(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"), capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        out[procs] = path.read_text().splitlines()
    assert out[2] == out[1] and len(out[1]) > 50
