"""Resumable sharded embedding jobs: layout, resume, and the errors that protect finished work."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hash_embedder import HashEmbedder, SaltedHashEmbedder, WrongDimEmbedder
from index_helpers import text_items

from umr.errors import UmrError
from umr.index.embed_job import EmbeddingStore, StoreError, run_embedding_job, shard_ranges


class CrashingEmbedder(HashEmbedder):
    """Raises on the n-th encode call: an in-process stand-in for a crash mid-job."""

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.calls, self.crash_at = 0, crash_at

    def encode(self, items, **kw):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("simulated crash")
        return super().encode(items, **kw)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_job_layout_and_merge(tmp_path: Path, embedder: HashEmbedder) -> None:
    items = text_items(25)
    store = run_embedding_job(items, embedder, tmp_path / "job", shard_size=10, show_progress=False)
    m = store.manifest()
    assert m["status"] == "complete" and m["n_items"] == 25 and m["dim"] == 32
    assert [(s["start"], s["end"]) for s in m["shards"]] == [(0, 10), (10, 20), (20, 25)]
    assert sorted(p.name for p in (tmp_path / "job" / "shards").iterdir()) == [
        "000000000-000000010.json", "000000000-000000010.npy", "000000010-000000020.json",
        "000000010-000000020.npy", "000000020-000000025.json", "000000020-000000025.npy"]
    np.testing.assert_array_equal(store.embeddings(), embedder.encode_corpus(items))
    assert [r["id"] for r in store.records()] == [f"d{i}" for i in range(25)]
    assert store.records()[3] == {"id": "d3", "modality": "text", "text": items[3].text, "image": None}
    assert not list((tmp_path / "job").rglob(".*tmp-*")), "temp files left behind"


def test_rerun_of_a_complete_job_changes_nothing(tmp_path: Path, embedder: HashEmbedder) -> None:
    run_embedding_job(text_items(12), embedder, tmp_path / "job", shard_size=5, show_progress=False)
    before = snapshot(tmp_path / "job")
    run_embedding_job(text_items(12), embedder, tmp_path / "job", shard_size=5, show_progress=False)
    assert snapshot(tmp_path / "job") == before


def test_resume_after_crash_reembeds_only_missing_shards(tmp_path: Path) -> None:
    items = text_items(30)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_embedding_job(items, CrashingEmbedder(crash_at=3), tmp_path / "job", shard_size=10, show_progress=False)
    store = EmbeddingStore(tmp_path / "job")
    assert store.manifest()["status"] == "running"
    assert sorted(store.done_records()) == [(0, 10), (10, 20)]
    kept = (tmp_path / "job/shards/000000000-000000010.npy").stat().st_mtime_ns

    resumed = CrashingEmbedder(crash_at=-1)
    run_embedding_job(items, resumed, tmp_path / "job", shard_size=10, show_progress=False)
    assert resumed.calls == 1, "only the unfinished shard is embedded again"
    assert (tmp_path / "job/shards/000000000-000000010.npy").stat().st_mtime_ns == kept
    fresh = run_embedding_job(items, HashEmbedder(), tmp_path / "fresh", shard_size=10, show_progress=False)
    assert (tmp_path / "job/embeddings.npy").read_bytes() == (tmp_path / "fresh/embeddings.npy").read_bytes()
    assert store.manifest()["embeddings"]["sha256"] == fresh.manifest()["embeddings"]["sha256"]


def _half_done(tmp_path: Path) -> Path:
    with pytest.raises(RuntimeError):
        run_embedding_job(text_items(30), CrashingEmbedder(crash_at=3), tmp_path / "job", shard_size=10,
                          show_progress=False)
    return tmp_path / "job"


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_shard_is_reported_and_nothing_is_overwritten(tmp_path: Path, damage: str) -> None:
    job = _half_done(tmp_path)
    shard = job / "shards/000000010-000000020.npy"
    data = bytearray(shard.read_bytes())
    if damage == "flip":
        data[-7] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    shard.write_bytes(bytes(data))
    before = snapshot(job)
    with pytest.raises(StoreError, match=r"corrupt shard: .*000000010-000000020\.npy.*re-embed items 10\.\.19"):
        run_embedding_job(text_items(30), HashEmbedder(), job, shard_size=10, show_progress=False)
    assert snapshot(job) == before


def test_manifest_listing_a_missing_shard_is_a_mismatch(tmp_path: Path) -> None:
    job = _half_done(tmp_path)
    (job / "shards/000000000-000000010.json").unlink()
    before = snapshot(job)
    with pytest.raises(StoreError, match=r"manifest mismatch: .*000000000-000000010 as done"):
        run_embedding_job(text_items(30), HashEmbedder(), job, shard_size=10, show_progress=False)
    assert snapshot(job) == before


@pytest.mark.parametrize(("change", "message"), [
    ("model", "different model"), ("corpus", "corpus contents"), ("shard_size", "shard_size"),
])
def test_a_different_job_in_the_directory_is_refused(tmp_path: Path, change: str, message: str) -> None:
    job = _half_done(tmp_path)
    before = snapshot(job)
    items, model, size = text_items(30), HashEmbedder(), 10
    if change == "model":
        model = SaltedHashEmbedder()
    elif change == "corpus":
        items = text_items(30, seed=1)
    else:
        size = 7
    with pytest.raises(StoreError, match=message) as err:
        run_embedding_job(items, model, job, shard_size=size, show_progress=False)
    assert "--overwrite" in str(err.value)
    assert snapshot(job) == before
    store = run_embedding_job(items, model, job, shard_size=size, overwrite=True, show_progress=False)
    np.testing.assert_array_equal(store.embeddings(), model.encode_corpus(items))


def test_wrong_vector_dimension_from_the_model(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"wrong vector dimension: .*\[10, 16\].*\[10, 32\]"):
        run_embedding_job(text_items(20), WrongDimEmbedder(), tmp_path / "job", shard_size=10, show_progress=False)
    assert not list((tmp_path / "job/shards").iterdir())


def test_shard_record_with_another_dimension(tmp_path: Path) -> None:
    job = _half_done(tmp_path)
    rec_path = job / "shards/000000000-000000010.json"
    rec = json.loads(rec_path.read_text())
    rec_path.write_text(json.dumps({**rec, "dim": 64}))
    with pytest.raises(StoreError, match="wrong vector dimension: shard .* has dim 64"):
        run_embedding_job(text_items(30), HashEmbedder(), job, shard_size=10, show_progress=False)


def test_refuses_foreign_directories_and_duplicate_ids(tmp_path: Path, embedder: HashEmbedder) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("precious")
    with pytest.raises(StoreError, match="did not write .*notes.txt"):
        run_embedding_job(text_items(3), embedder, tmp_path / "mine", overwrite=True, show_progress=False)
    assert (tmp_path / "mine/notes.txt").read_text() == "precious"
    dup = text_items(3) + text_items(1)
    with pytest.raises(StoreError, match="duplicate item id 'd0'"):
        run_embedding_job(dup, embedder, tmp_path / "dup", show_progress=False)


def test_shard_ranges() -> None:
    assert shard_ranges(0, 4) == []
    assert shard_ranges(9, 4) == [(0, 4), (4, 8), (8, 9)]
    with pytest.raises(ValueError):
        shard_ranges(3, 0)


def test_float16_store_halves_the_vectors_and_refuses_a_float32_rerun(tmp_path: Path, embedder: HashEmbedder) -> None:
    items = text_items(25)
    store = run_embedding_job(items, embedder, tmp_path / "job", shard_size=10, show_progress=False,
                              store_dtype="float16")
    emb = store.embeddings()
    assert emb.dtype == np.float16 and store.manifest()["dtype"] == "float16"
    np.testing.assert_allclose(emb.astype(np.float32), embedder.encode_corpus(items), atol=1e-3)
    assert (tmp_path / "job" / "embeddings.npy").stat().st_size < 25 * 32 * 2 + 200
    with pytest.raises(StoreError, match="dtype"):
        run_embedding_job(items, embedder, tmp_path / "job", shard_size=10, show_progress=False)
    with pytest.raises(StoreError, match="store dtype"):
        run_embedding_job(items, embedder, tmp_path / "other", store_dtype="float64", show_progress=False)


def test_a_lazy_sequence_is_read_a_chunk_at_a_time(tmp_path: Path, embedder: HashEmbedder) -> None:
    """A corpus that makes its items per slice (a 5.6M-candidate pool) is never listed whole: the job asks for
    slices, and the output equals that of the same items in a list."""

    class Lazy(Sequence):
        def __init__(self, items: list) -> None:
            self.items, self.largest = items, 0

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i):  # type: ignore[no-untyped-def]
            if isinstance(i, slice):
                got = self.items[i]
                self.largest = max(self.largest, len(got))
                return got
            return self.items[i]

    items = text_items(30)
    lazy = Lazy(items)
    store = run_embedding_job(lazy, embedder, tmp_path / "lazy", shard_size=7, show_progress=False)
    plain = run_embedding_job(items, embedder, tmp_path / "list", shard_size=7, show_progress=False)
    assert lazy.largest <= 4096
    np.testing.assert_array_equal(store.embeddings(), plain.embeddings())
    assert (tmp_path / "lazy" / "ids.jsonl").read_bytes() == (tmp_path / "list" / "ids.jsonl").read_bytes()


def test_a_query_job_keeps_instructions_records_its_role_and_is_no_document_job(tmp_path: Path,
                                                                                embedder: HashEmbedder) -> None:
    from umr.index.build import build_index

    items = [it.with_instruction("find the passage") for it in text_items(6, prefix="q")]
    store = run_embedding_job(items, embedder, tmp_path / "q", shard_size=4, show_progress=False, role="query")
    assert store.manifest()["role"] == "query"
    np.testing.assert_array_equal(store.embeddings(), embedder.encode_query(items))
    assert np.abs(store.embeddings() - embedder.encode_document(items)).max() > 1e-3  # the instruction was kept
    with pytest.raises(StoreError, match="different role \\(directory: query; now: document\\)"):
        run_embedding_job(items, embedder, tmp_path / "q", shard_size=4, show_progress=False)
    with pytest.raises(UmrError, match="holds query embeddings; an index holds documents"):
        build_index(store, show_progress=False)
