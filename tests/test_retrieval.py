"""`umr.pool_view.PoolView.search` against a brute-force oracle: exact float64 scores, a stable sort on descending
score (the earlier pool row first among equal scores), cut at k — on pools built to tie, across the cut too, for
both block kernels, a float16 store, blocks smaller than the pool and sub-pools that select rows of the matrix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from umr.data.mbeir import Candidate
from umr.data.pool_columns import PoolColumns
from umr.errors import UmrError
from umr.index import block_search
from umr.pool_view import PoolView


def _pool(vectors: np.ndarray, modalities: list[str], kernel: str = "auto") -> PoolView:
    cands = {f"1:{i}": Candidate(f"1:{i}", modalities[i % len(modalities)], txt=f"t{i}") for i in range(len(vectors))}
    return PoolView(PoolColumns.of(cands), vectors, kernel=kernel)


def _oracle(emb: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row scored in float64 on its own, then a stable sort on descending score (numpy only)."""
    rows = np.arange(len(emb))
    s = np.array([float(np.dot(e.astype(np.float64), q.astype(np.float64))) for e in emb])
    order = np.lexsort((rows, -s))[:k]
    return s[order], rows[order]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(params=["torch", "faiss"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # blocks of 16 rows: the pools below span many blocks, so the running top-k merge is exercised
    real = block_search.block_topk

    def small_blocks(*args, **kw):
        kw.setdefault("block_rows", 16)
        kw.setdefault("query_block", 2)
        return real(*args, **kw)

    monkeypatch.setattr("umr.pool_view.block_topk", small_blocks)
    return request.param


@pytest.mark.parametrize("modalities", [["image"], ["image", "text", "image,text"]])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_ties_rank_the_earlier_pool_row_first_and_decide_the_cut(modalities: list[str], dtype: type,
                                                                  kernel: str) -> None:
    rng = np.random.default_rng(0)
    distinct = _unit(rng.standard_normal((6, 8))).astype(dtype)
    emb = distinct[rng.integers(0, 6, 200)]  # 200 rows, 6 vectors: every score is shared by ~33 rows
    queries = _unit(rng.standard_normal((5, 8)))
    view = _pool(emb, modalities, kernel)
    for k in (1, 7, 40, 199, 200, 500):
        scores, rows = view.search(queries, k)
        assert rows.shape == (5, min(k, 200)) and rows.dtype == np.int64
        for qi, q in enumerate(queries):
            want_scores, want_rows = _oracle(emb, q, k)
            assert rows[qi].tolist() == want_rows.tolist(), (k, qi)
            np.testing.assert_allclose(scores[qi], want_scores, rtol=0, atol=1e-12)


def test_distinct_scores_match_brute_force(kernel: str) -> None:
    rng = np.random.default_rng(1)
    emb, queries = _unit(rng.standard_normal((300, 16))), _unit(rng.standard_normal((4, 16)))
    scores, rows = _pool(emb, ["text"], kernel).search(queries, 10)
    for qi, q in enumerate(queries):
        assert rows[qi].tolist() == _oracle(emb, q, 10)[1].tolist()


def test_a_sub_pool_searches_its_rows_of_the_shared_matrix(kernel: str) -> None:
    """global-modality and local-from-global pools select rows of one matrix; ties keep the sub-pool's order."""
    rng = np.random.default_rng(3)
    distinct = _unit(rng.standard_normal((4, 8)))
    emb = distinct[rng.integers(0, 4, 120)]
    view = _pool(emb, ["image", "text"], kernel)
    images = view.with_modality("image")
    assert len(images) == 60 and set(images.modality.tolist()) == {"image"}
    assert np.shares_memory(images.emb, emb), "a sub-pool keeps the matrix, not a copy"
    queries = _unit(rng.standard_normal((3, 8)))
    scores, rows = images.search(queries, 25)
    for qi, q in enumerate(queries):
        assert rows[qi].tolist() == _oracle(emb[0::2], q, 25)[1].tolist()


def test_empty_pool_and_sub_view() -> None:
    empty = PoolView(PoolColumns.of({}), np.zeros((0, 4), dtype=np.float32))
    scores, rows = empty.search(np.ones((2, 4), dtype=np.float32), 5)
    assert scores.shape == rows.shape == (2, 0)
    emb = _unit(np.random.default_rng(2).standard_normal((5, 4)))
    view = _pool(emb, ["text"])
    local = PoolColumns.of([Candidate("1:3", "text", txt="t3"), Candidate("1:1", "text", txt="t1")])
    sub = view.sub_view(local, Path("local.jsonl"))
    assert sub.dids.tolist() == ["1:3", "1:1"] and np.array_equal(sub.vectors(np.arange(2)), emb[[3, 1]])
    assert sub.candidates([0])[0].txt == "t3" and sub.row["1:1"] == 1
    with pytest.raises(UmrError, match="not in the global pool"):
        view.sub_view(PoolColumns.of([Candidate("9:9", "text", txt="x")]), Path("local.jsonl"))


def test_a_pool_file_is_read_as_columns_and_its_lines_on_demand(tmp_path: Path) -> None:
    import json

    lines = [{"did": f"2:{i}", "modality": "text", "txt": f"passage {i} ünïcode", "img_path": None,
              "src_content": None} for i in range(50)]
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" + ("\n" if i == 7 else "")
                            for i, x in enumerate(lines)), encoding="utf-8")
    cols = PoolColumns.read(path, tmp_path)
    assert len(cols) == 50 and cols.row["2:31"] == 31 and "2:50" not in cols.row
    assert cols.candidate(31).txt == "passage 31 ünïcode"
    assert [it.text for it in cols.items(tmp_path)[8:10]] == ["passage 8 ünïcode", "passage 9 ünïcode"]
    assert cols.items(tmp_path)[-1].id == "2:49"


def test_embed_items_caches_queries_apart_from_documents_and_embeds_each_as_its_role(tmp_path: Path) -> None:
    from umr.items import Item
    from umr.models.baselines import RandomEmbedder
    from umr.retrieval import embed_items

    emb = RandomEmbedder(dim=8)
    items = [Item(text="a red bus", id="9:1"), Item(text="a cat", id="9:2")]
    key = {"source": "same file"}
    docs = np.asarray(embed_items(emb, items, "set", key, cache_dir=tmp_path))
    queries = np.asarray(embed_items(emb, items, "set", key, cache_dir=tmp_path, role="query"))
    np.testing.assert_array_equal(docs, emb.encode_document(items))
    np.testing.assert_array_equal(queries, emb.encode_query(items))
    assert np.abs(queries - docs).max() > 0.1
    roles = sorted(json.loads((d / "manifest.json").read_text())["role"] for d in tmp_path.iterdir())
    assert roles == ["document", "query"]  # two stores, one per role
    np.testing.assert_array_equal(embed_items(emb, items, "set", key, role="query"), queries)  # uncached: the same
