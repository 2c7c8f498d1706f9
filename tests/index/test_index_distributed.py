"""Multi-process embedding: 2 CPU ranks (torchrun + gloo, or plain RANK/WORLD_SIZE) equal one process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from index_helpers import text_items, write_jsonl
from test_index_cli import files, subprocess_env, umr_command
from test_index_embed_job import CrashingEmbedder

from umr.index.embed_job import run_embedding_job
from umr.runtime.distributed import DistInfo, dist_info


def shard_ranks(job: Path) -> set[int]:
    return {s["rank"] for s in json.loads((job / "manifest.json").read_text())["shards"]}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="no torchrun")
def test_torchrun_two_processes_equal_one_process_minilm(tmp_path: Path) -> None:
    """The real MiniLM model, 2 ranks under torchrun (gloo) vs 1 process: byte-identical outputs.

    Both sides run with one intra-op thread (torchrun's default per worker): a CPU matmul's summation order
    depends on the thread count, which would move the last bit of a float regardless of the job.
    """
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": it.id, "text": it.text} for it in text_items(96, seed=5)])
    args = ["index", "build", "--model", "text", "--corpus", str(corpus), "--shard-size", "16", "--no-progress"]
    env = subprocess_env(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    single = subprocess.run(umr_command(*args, "--out", str(tmp_path / "one")), env=env, capture_output=True,
                            text=True)
    assert single.returncode == 0, single.stderr
    torchrun = str(Path(sys.executable).parent / "torchrun")
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "--no-python", sys.executable, "-c",
                          "import sys; from umr.cli import main; sys.exit(main())", *args, "--out",
                          str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    assert shard_ranks(tmp_path / "two") == {0, 1}, "both ranks embedded shards"
    assert files(tmp_path / "two").keys() == files(tmp_path / "one").keys()
    for name, data in files(tmp_path / "one").items():
        if name != "manifest.json" and not name.endswith(".json"):
            assert files(tmp_path / "two")[name] == data, f"{name} differs between 1 and 2 processes"


def test_plain_env_ranks_resume_a_half_done_job(tmp_path: Path) -> None:
    """Ranks started as separate processes with RANK/WORLD_SIZE only (no MASTER_ADDR: no process group) finish
    a job a single process began and crashed in; rank 0 waits for rank 1's shards, then merges."""
    items = text_items(40)
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": it.id, "text": it.text} for it in items])
    with pytest.raises(RuntimeError):
        run_embedding_job(items, CrashingEmbedder(crash_at=3), tmp_path / "job", shard_size=5, show_progress=False)
    args = ["index", "build", "--model", "py:hash_embedder:HashEmbedder", "--corpus", str(corpus), "--out",
            str(tmp_path / "job"), "--no-progress"]
    base = {k: v for k, v in subprocess_env().items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    procs = [subprocess.Popen(umr_command(*args), env={**base, "RANK": str(r), "WORLD_SIZE": "2"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (1, 0)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    shards = json.loads((tmp_path / "job/manifest.json").read_text())["shards"]
    # shards 0-1 came from the crashed single process (rank 0); then shard i belongs to rank i % 2
    assert [s["rank"] for s in shards] == [0, 0] + [i % 2 for i in range(2, 8)]
    single = subprocess.run(umr_command(*[a if a != str(tmp_path / "job") else str(tmp_path / "one") for a in args]),
                            env=subprocess_env(), capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    assert (tmp_path / "job/embeddings.npy").read_bytes() == (tmp_path / "one/embeddings.npy").read_bytes()
    assert (tmp_path / "job/ids.jsonl").read_bytes() == (tmp_path / "one/ids.jsonl").read_bytes()


def test_dist_info_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert dist_info() == DistInfo(0, 1, 0)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dist_info() == DistInfo(3, 4, 1) and not dist_info().is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match=r"RANK=4 is not in \[0, WORLD_SIZE=4\)"):
        dist_info()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="RANK='x' is not an integer"):
        dist_info()
