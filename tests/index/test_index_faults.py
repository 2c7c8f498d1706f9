"""Job faults: temp files a killed run leaves are cleaned on resume, a root spelled two ways is one job, and
`umr search -k` far past the index size costs nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from umr.cli import main
from umr.runtime.atomic import remove_stale_temps

MODEL = "py:hash_embedder:HashEmbedder"


def build(corpus: str | Path, out: Path, *extra: str) -> int:
    return main(["index", "build", "--model", MODEL, "--corpus", str(corpus), "--out", str(out), "--no-progress",
                 *extra])


def dead_pid() -> int:
    """The pid of a process that has exited (what a SIGKILLed writer's temp names carry)."""
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def test_resume_removes_temp_files_of_killed_writers(text_corpus: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert build(text_corpus, job, "--shard-size", "10") == 0
    pid = dead_pid()
    left = [job / f".manifest.json.tmp-{pid}-1a2b3c4d", job / f".embeddings.npy.tmp-{pid}-5e6f7a8b",
            job / "shards" / f".000000010-000000020.npy.tmp-{pid}-0badf00d",
            job / "index" / f".part-text.g2.faiss.tmp-{pid}-12345678",
            job / "index" / f".meta.g2.sqlite.tmp-{pid}-9abcdef0", job / "index" / f".index.json.tmp-{pid}-00000000"]
    for path in left:
        path.write_bytes(b"\0" * 4096)
    alive = job / f".ids.jsonl.tmp-{os.getppid()}-feedbeef"  # a writer that is still running keeps its file
    alive.write_bytes(b"x")
    assert build(text_corpus, job) == 0  # a rerun of a finished job: resumes, finds nothing to do
    assert [p for p in left if p.exists()] == []
    assert alive.exists()


def test_resume_after_an_interrupted_embedding_cleans_too(text_corpus: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert build(text_corpus, job, "--shard-size", "10") == 0
    manifest = json.loads((job / "manifest.json").read_text())
    manifest.update(status="running", shards=manifest["shards"][:1])  # as a kill after the first shard leaves it
    (job / "manifest.json").write_text(json.dumps(manifest))
    (job / "embeddings.npy").unlink()
    stale = job / f".embeddings.npy.tmp-{dead_pid()}-aaaaaaaa"
    stale.write_bytes(b"\0" * 100_000)  # the merge was under way: a full-size temp
    assert build(text_corpus, job) == 0
    assert not stale.exists() and (job / "embeddings.npy").exists()


def test_remove_stale_temps_leaves_other_files(tmp_path: Path) -> None:
    keep = [tmp_path / "manifest.json", tmp_path / ".hidden", tmp_path / f".x.tmp-{os.getpid()}-1"]
    for path in keep:
        path.write_text("k")
    assert remove_stale_temps(tmp_path) == []
    assert all(p.exists() for p in keep)


def test_a_root_spelled_relative_then_absolute_is_one_job(mixed_corpus: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(mixed_corpus.parent)
    assert build(mixed_corpus.name, tmp_path / "job", "--shard-size", "4") == 0
    capsys.readouterr()
    assert build(mixed_corpus.resolve(), tmp_path / "job") == 0  # before: "different corpus contents"
    assert "up to date" in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "job" / "ids.jsonl").read_text().splitlines()]
    assert all(Path(r["image"]).is_absolute() for r in records if r["image"])


def test_search_k_is_capped_at_the_index_size(text_corpus: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    assert build(text_corpus, tmp_path / "job") == 0
    capsys.readouterr()
    assert main(["search", "--index", str(tmp_path / "job"), "--text", "red", "-k", "1000000000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 25 and out["k"] == 1000000000


def test_reindex_merges_a_truncated_embeddings_file_again(text_corpus: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert build(text_corpus, job, "--shard-size", "10") == 0
    merged = job / "embeddings.npy"
    whole = merged.read_bytes()
    merged.write_bytes(whole[: len(whole) // 2])  # a copy cut short: np.load raised a ValueError traceback
    assert build(text_corpus, job, "--reindex") == 0
    assert merged.read_bytes() == whole  # merged again, bit-identical, from the verified shards


def test_a_full_disk_at_the_merge_is_one_line_and_keeps_the_shards(text_corpus: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    import umr.index.embed_job as embed_job

    job = tmp_path / "job"
    full = shutil._ntuple_diskusage(10**9, 10**9 - 100, 100)  # 100 bytes free: the memmap died of SIGBUS
    monkeypatch.setattr(embed_job.shutil, "disk_usage", lambda path: full)
    assert build(text_corpus, job, "--shard-size", "10") == 2
    err = capsys.readouterr().err
    assert f"umr index: error: {job}: merging needs " in err and "GB free, 0.00 GB are" in err
    assert err.count("\n") == 1 and not list(job.glob(".*tmp*")) and not (job / "embeddings.npy").exists()
    shards = sorted(p.name for p in (job / "shards").glob("*.npy"))
    assert len(shards) >= 2  # the finished shards stay for the rerun
    monkeypatch.undo()
    assert build(text_corpus, job) == 0 and (job / "embeddings.npy").is_file()


def test_a_full_disk_while_writing_a_shard_is_one_line(text_corpus: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    real_save, calls = np.save, []

    def save(fh, array, **kw):  # the third shard finds the disk full
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", getattr(fh, "name", None))
        return real_save(fh, array, **kw)

    monkeypatch.setattr(np, "save", save)
    job = tmp_path / "job"
    assert build(text_corpus, job, "--shard-size", "10") == 2
    err = capsys.readouterr().err
    assert err.startswith("umr index: error: ") and err.rstrip().endswith(": No space left on device")
    assert "Traceback" not in err and not list(job.rglob(".*tmp*"))  # the temp file is removed
    assert len(list((job / "shards").glob("*.npy"))) == 2  # the two finished shards are kept
