"""FAISS Index: brute-force oracle, fillers, modality filter, add/delete, atomic save/load, mmap, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from index_helpers import clustered

from umr.index import create_index, load_index
from umr.index.faiss_index import FaissIndex

N, D = 3000, 32
MODS = ("text", "image", "image,text")
DATA = Path(__file__).parent / "data"


def corpus(n: int = N, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    x = clustered(n, D, seed=seed)
    recs = [{"id": f"d{i}", "modality": MODS[i % 3], "text": f"item {i}", "image": f"img/{i}.png" if i % 3 else None}
            for i in range(n)]
    return x, recs


def queries(x: np.ndarray, n: int = 40, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = x[rng.integers(0, len(x), n)] + 0.1 * rng.standard_normal((n, D)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def oracle(q: np.ndarray, x: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Brute-force top-k ids ("d{row}") over the given rows."""
    rows = np.arange(len(x)) if rows is None else rows
    top = np.argsort(-(q @ x[rows].T), axis=1, kind="stable")[:, :k]
    return np.vectorize(lambda r: f"d{r}")(rows[top])


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(got, truth, strict=True)]))


@pytest.fixture(scope="module")
def built() -> dict[str, FaissIndex]:
    x, recs = corpus()
    out = {}
    for kind in ("flat", "hnsw", "ivfpq"):
        index = FaissIndex(D, kind)
        index.add(x, recs)
        out[kind] = index
    return out


@pytest.mark.parametrize(("kind", "min_recall"), [("flat", 1.0), ("hnsw", 0.95), ("ivfpq", 0.4)])
def test_search_against_brute_force(built: dict[str, FaissIndex], kind: str, min_recall: float) -> None:
    x, _ = corpus()
    q = queries(x)
    scores, ids = built[kind].search(q, 10)
    assert scores.shape == ids.shape == (40, 10) and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "best first"
    truth = oracle(q, x, 10)
    assert recall(ids, truth) >= min_recall
    if kind == "flat":
        np.testing.assert_array_equal(ids, truth)
        np.testing.assert_allclose(scores, np.sort(q @ x.T, axis=1)[:, ::-1][:, :10], atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_modality_filter(built: dict[str, FaissIndex], kind: str) -> None:
    x, recs = corpus()
    q = queries(x)
    mods = np.array([r["modality"] for r in recs])
    for wanted in (["image"], ["text", "image,text"]):
        scores, ids = built[kind].search(q, 10, modality=wanted)
        assert all(built[kind].get([i])[0]["modality"] in wanted for i in ids.ravel())
        assert np.isfinite(scores).all(), "k results of the wanted modality always come back"
        truth = oracle(q, x, 10, rows=np.flatnonzero(np.isin(mods, wanted)))
        if kind == "flat":
            np.testing.assert_array_equal(ids, truth)
        elif kind == "hnsw":
            assert recall(ids, truth) >= 0.95


def test_fillers_when_fewer_than_k() -> None:
    index = create_index(D)
    empty_scores, empty_ids = index.search(np.ones((2, D), np.float32), 5)
    assert np.all(empty_scores == -np.inf) and np.all(empty_ids == None)  # noqa: E711
    x, recs = corpus(6)
    index.add(x, recs)
    scores, ids = index.search(x[:2], 5, modality="image")
    assert list(ids[0, :2]) == ["d1", "d4"] or list(ids[0, :2]) == ["d4", "d1"]
    assert np.all(scores[:, 2:] == -np.inf) and np.all(ids[:, 2:] == None)  # noqa: E711
    assert np.isfinite(scores[:, :2]).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_incremental_add_and_delete(kind: str, tmp_path: Path) -> None:
    x, recs = corpus(300)
    index = FaissIndex(D, kind)
    index.add(x[:200], recs[:200])
    index.add(x[200:], recs[200:])
    assert len(index) == 300 and index.modality_counts() == {"image": 100, "image,text": 100, "text": 100}
    assert index.search(x[250], 1).ids[0, 0] == "d250"
    assert index.delete(["d250", "d7", "nope"]) == 2
    assert index.get(["d250", "d8"]) == [None, recs[8]]
    scores, ids = index.search(x[[250, 7]], 300)
    assert "d250" not in ids and "d7" not in ids and (ids != None).sum() == 2 * 298  # noqa: E711
    with pytest.raises(ValueError, match="'d8' is already in the index"):
        index.add(x[8:9], recs[8:9])
    index.add(x[7:8], [{**recs[7], "text": "re-added"}])
    assert index.search(x[7], 1).ids[0, 0] == "d7" and index.get(["d7"])[0]["text"] == "re-added"
    index.save(tmp_path / "ix")
    again = FaissIndex.load(tmp_path / "ix")
    assert len(again) == 299 and "d250" not in again.search(x[250], 300).ids


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_save_load_roundtrip_and_mmap(built: dict[str, FaissIndex], kind: str, tmp_path: Path) -> None:
    x, _ = corpus()
    q = queries(x)
    built[kind].save(tmp_path / "ix")
    expected = built[kind].search(q, 10, modality=["image", "text"])
    for mmap in (False, True):
        loaded = load_index(tmp_path / "ix", mmap=mmap)
        got = loaded.search(q, 10, modality=["image", "text"])
        np.testing.assert_array_equal(got.ids, expected.ids)
        np.testing.assert_array_equal(got.scores, expected.scores)
        assert loaded.get(["d5"]) == built[kind].get(["d5"])
    with pytest.raises(ValueError, match="memory-mapped"):
        loaded.add(x[:1], [{"id": "new"}])


def test_save_is_atomic_and_replaces_the_previous_generation(tmp_path: Path) -> None:
    x, recs = corpus(30)
    index = create_index(D)
    index.add(x[:20], recs[:20])
    index.save(tmp_path / "ix")
    first = {p.name for p in (tmp_path / "ix").iterdir()}
    assert first == {"index.json", "meta.g1.sqlite", "part-text.g1.faiss", "part-image.g1.faiss",
                     "part-image+text.g1.faiss"}
    # A crash mid-save leaves next-generation files beside an index.json still pointing at generation 1.
    shutil.copy(tmp_path / "ix/part-text.g1.faiss", tmp_path / "ix/part-text.g2.faiss")
    (tmp_path / "ix/meta.g2.sqlite").write_bytes(b"half written")
    assert len(load_index(tmp_path / "ix")) == 20
    loaded = load_index(tmp_path / "ix")
    loaded.add(x[20:], recs[20:])
    assert len(load_index(tmp_path / "ix")) == 20, "changes reach disk only through save"
    loaded.save(tmp_path / "ix")
    assert json.loads((tmp_path / "ix/index.json").read_text())["generation"] == 2
    assert not any(".g1." in p.name for p in (tmp_path / "ix").iterdir())
    assert len(load_index(tmp_path / "ix")) == 30


def test_old_saved_index_keeps_loading() -> None:
    """A format-1 index saved by an earlier umr (frozen in tests/index/data) loads and answers the same."""
    expected = json.loads((DATA / "index_v1_expected.json").read_text())
    index = load_index(DATA / "index_v1")
    scores, ids = index.search(np.array(expected["queries"], np.float32), 3)
    assert ids.tolist() == expected["ids"]
    np.testing.assert_allclose(scores, expected["scores"], atol=1e-6)


def test_clear_errors(tmp_path: Path) -> None:
    x, recs = corpus(10)
    index = create_index(D)
    with pytest.raises(ValueError, match=r"wrong vector dimension: vectors have shape \[10, 16\]"):
        index.add(x[:, :16], recs)
    with pytest.raises(ValueError, match="10 vectors but 9 records"):
        index.add(x, recs[:9])
    with pytest.raises(ValueError, match="'d1' appears twice"):
        index.add(x[:2], [recs[1], recs[1]])
    index.add(x, recs)
    with pytest.raises(ValueError, match=r"wrong vector dimension: queries have shape \[2, 64\]"):
        index.search(np.ones((2, 64), np.float32), 3)
    with pytest.raises(ValueError, match="unknown modality 'imgae'"):
        index.search(x[:1], 3, modality="imgae")
    with pytest.raises(ValueError, match="unknown index type"):
        create_index(D, "lsh")
    index.save(tmp_path / "ix")
    (tmp_path / "ix/part-text.g1.faiss").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"part-text\.g1\.faiss is not a readable faiss index"):
        load_index(tmp_path / "ix")
    with pytest.raises(FileNotFoundError, match="no index.json"):
        load_index(tmp_path)
