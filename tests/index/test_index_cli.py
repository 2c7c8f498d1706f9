"""`umr index build` / `umr index info` / `umr search`: SIGKILL + resume, filters, mismatches, reindex."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from index_helpers import HERE, text_items, write_jsonl

from umr.cli import main
from umr.cli.cmd_index import corpus_root
from umr.index import load_index

MODEL = "py:hash_embedder:HashEmbedder"


def build(corpus: Path, out: Path, *extra: str) -> int:
    return main(["index", "build", "--model", MODEL, "--corpus", str(corpus), "--out", str(out), "--no-progress",
                 *extra])


def subprocess_env(**extra: str) -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.pathsep.join([str(HERE), src, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


def umr_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from umr.cli import main; sys.exit(main())", *args]


def files(root: Path) -> dict[str, bytes]:
    """Every output byte of a job (the shard records' timing field aside), index excluded."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and ".tmp-" not in p.name and "index" not in p.parts:
            data = p.read_bytes()
            if p.parent.name == "shards" and p.suffix == ".json":
                data = json.dumps({**json.loads(data), "seconds": None}).encode()
            out[str(p.relative_to(root))] = data
    return out


def test_sigkill_mid_build_then_resume_gives_identical_output(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": it.id, "text": it.text} for it in text_items(60)])
    assert build(corpus, tmp_path / "ref", "--shard-size", "5", "--batch-size", "5") == 0

    job = tmp_path / "killed"
    args = ["index", "build", "--model", MODEL, "--corpus", str(corpus), "--out", str(job), "--shard-size", "5",
            "--batch-size", "5", "--no-progress"]
    proc = subprocess.Popen(umr_command(*args), env=subprocess_env(UMR_TEST_EMBED_DELAY="0.4"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list((job / "shards").glob("*.json")):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the job never finished a shard"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    manifest = json.loads((job / "manifest.json").read_text())
    assert manifest["status"] == "running" and 1 <= len(list((job / "shards").glob("*.json"))) < 12
    assert not (job / "embeddings.npy").exists()

    resumed = subprocess.run(umr_command(*args), env=subprocess_env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert files(job) == files(tmp_path / "ref"), "resumed output differs from an uninterrupted run"
    emb = np.load(job / "embeddings.npy")
    assert emb.shape == (60, 32)
    ids = [json.loads(line)["id"] for line in (job / "ids.jsonl").read_text().splitlines()]
    assert ids == [f"d{i}" for i in range(60)], "no item duplicated or lost"
    q = emb[[3, 41]]
    np.testing.assert_array_equal(load_index(job / "index").search(q, 5).ids,
                                  load_index(tmp_path / "ref/index").search(q, 5).ids)


def test_search_cli_with_modality_filter(mixed_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(mixed_corpus, tmp_path / "job", "--shard-size", "4") == 0
    assert "12 items (image: 4, image,text: 4, text: 4)" in capsys.readouterr().out
    red = str(mixed_corpus.parent / "images/red.png")

    assert main(["search", "--index", str(tmp_path / "job"), "--image", red, "--modality", "image", "-k", "3",
                 "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["modality"] for r in results] == ["image"] * 3
    assert results[0]["id"] == "img:red" and results[0]["image"].endswith("images/red.png")
    assert results[0]["score"] == pytest.approx(1.0, abs=1e-5)

    assert main(["search", "--index", str(tmp_path / "job"), "--text", "the colour green", "--modality", "text",
                 "-k", "10", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert results[0]["id"] == "txt:green" and len(results) == 4, "only the 4 text items, no fillers"

    blue = str(mixed_corpus.parent / "images/blue.png")
    assert main(["search", "--index", str(tmp_path / "job"), "--text", "a blue square card", "--image", blue,
                 "-k", "2"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "card:blue" in first and "(image,text)" in first


def test_search_refuses_another_model(text_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(text_corpus, tmp_path / "job") == 0
    capsys.readouterr()
    rc = main(["search", "--index", str(tmp_path / "job"), "--text", "red", "--model",
               "py:hash_embedder:SaltedHashEmbedder"])
    assert rc == 2 and "index/model mismatch" in capsys.readouterr().err


def test_search_reranks_past_k(text_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture) -> None:
    """--rerank 5 -k 1 re-ranks the top 5 and prints the best one; it used to search (and re-rank) only k."""
    assert build(text_corpus, tmp_path / "job") == 0
    capsys.readouterr()
    search = ["search", "--index", str(tmp_path / "job"), "--text", "red cat", "--json"]
    assert main([*search, "-k", "5"]) == 0
    fifth = json.loads(capsys.readouterr().out)["results"][4]["id"]

    class PrefersFifth:
        def __init__(self, *args: object, **kwargs: object) -> None: ...

        def score(self, query: object, cands: list) -> list[float]:
            return [float(c.id == fifth) for c in cands]

    monkeypatch.setattr("umr.rerank.prompted.Reranker", PrefersFifth)
    assert main([*search, "-k", "1", "--rerank", "5", "--reranker", "any"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)["results"]] == [fifth]


def test_build_refuses_a_directory_of_another_model(text_corpus: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    assert build(text_corpus, tmp_path / "job") == 0
    before = files(tmp_path / "job")
    rc = main(["index", "build", "--model", "py:hash_embedder:SaltedHashEmbedder", "--corpus", str(text_corpus),
               "--out", str(tmp_path / "job"), "--no-progress"])
    assert rc == 2 and "different model" in capsys.readouterr().err
    assert files(tmp_path / "job") == before


def test_reindex_keeps_embeddings(text_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(text_corpus, tmp_path / "job") == 0
    emb = (tmp_path / "job/embeddings.npy").read_bytes()
    assert build(text_corpus, tmp_path / "job") == 0
    assert "up to date" in capsys.readouterr().out
    assert build(text_corpus, tmp_path / "job", "--type", "hnsw") == 2
    assert "--reindex" in capsys.readouterr().err
    assert build(text_corpus, tmp_path / "job", "--type", "hnsw", "--reindex") == 0
    assert load_index(tmp_path / "job/index").kind == "hnsw"
    assert (tmp_path / "job/embeddings.npy").read_bytes() == emb


def test_index_info(text_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(text_corpus, tmp_path / "job", "--shard-size", "10") == 0
    capsys.readouterr()
    assert main(["index", "info", str(tmp_path / "job"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["status"] == "complete" and info["embedded"] == info["items"] == 25
    assert info["index"] == {"backend": "faiss", "type": "flat", "count": 25, "generation": 1}


def test_corpus_root_for_mbeir_pools(tmp_path: Path) -> None:
    pool = tmp_path / "M-BEIR/cand_pool/local/mbeir_x_task0_cand_pool.jsonl"
    assert corpus_root(pool, None) == (tmp_path / "M-BEIR").resolve()
    assert corpus_root(tmp_path / "items.jsonl", None) == tmp_path
    assert corpus_root(pool, tmp_path / "elsewhere") == tmp_path / "elsewhere"
