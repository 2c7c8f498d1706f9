"""The Milvus backend, run for real on Milvus Lite (a local file): same API, same oracle as FAISS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from index_helpers import clustered
from test_index_faiss import oracle, recall

from umr.cli import main
from umr.index import create_index, load_index

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

N, D = 300, 16
MODS = ("text", "image", "image,text")


def corpus() -> tuple[np.ndarray, list[dict]]:
    x = clustered(N, D, n_clusters=10, seed=4)
    return x, [{"id": f"d{i}", "modality": MODS[i % 3], "text": f"item {i}", "image": f"{i}.png" if i % 3 else None}
               for i in range(N)]


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("milvus") / "index"


@pytest.mark.parametrize(("kind", "min_recall"), [("flat", 1.0), ("hnsw", 0.9)])
def test_milvus_lite_search_filter_and_persistence(lite: Path, kind: str, min_recall: float) -> None:
    x, recs = corpus()
    index = create_index(D, kind, "milvus", uri=str(lite / "milvus.db"), collection=f"t_{kind}", overwrite=True)
    index.add(x, recs)
    assert len(index) == N and index.modality_counts() == {"image": 100, "image,text": 100, "text": 100}
    q = x[[5, 77, 123]] + 0.05
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    scores, ids = index.search(q, 10)
    assert scores.shape == ids.shape == (3, 10) and scores.dtype == np.float32
    assert recall(ids, oracle(q, x, 10)) >= min_recall
    if kind == "flat":
        np.testing.assert_array_equal(ids, oracle(q, x, 10))
        np.testing.assert_allclose(scores, np.sort(q @ x.T, axis=1)[:, ::-1][:, :10], atol=1e-5)

    mods = np.array([r["modality"] for r in recs])
    _, ids = index.search(q, 10, modality="image")
    assert {r["modality"] for r in index.get(ids.ravel())} == {"image"}
    assert recall(ids, oracle(q, x, 10, rows=np.flatnonzero(mods == "image"))) >= min_recall

    assert index.get(["d1", "missing"]) == [recs[1], None]
    assert index.delete(["d5", "d6", "missing"]) == 2
    assert "d5" not in index.search(x[5], 5).ids and len(index) == N - 2
    with pytest.raises(ValueError, match="'d7' is already in the index"):
        index.add(x[7:8], recs[7:8])
    with pytest.raises(ValueError, match="wrong vector dimension"):
        index.search(np.ones((1, 8), np.float32), 3)

    index.save(lite)
    spec = json.loads((lite / "index.json").read_text())
    assert spec["backend"] == "milvus" and spec["uri"] == "milvus.db", "a Lite file inside the dir is relative"
    again = load_index(lite)
    np.testing.assert_array_equal(again.search(q, 10, modality="image").ids, ids)
    with pytest.raises(ValueError, match="already exists"):
        create_index(D, kind, "milvus", uri=str(lite / "milvus.db"), collection=f"t_{kind}")


def test_milvus_fillers(lite: Path) -> None:
    x, recs = corpus()
    index = create_index(D, "flat", "milvus", uri=str(lite / "milvus.db"), collection="small", overwrite=True)
    index.add(x[:4], recs[:4])
    scores, ids = index.search(x[:2], 6, modality=["image", "image,text"])
    assert (ids[:, :2] != None).all() and (ids[:, 2:] == None).all()  # noqa: E711
    assert np.isinf(scores[:, 2:]).all() and np.isfinite(scores[:, :2]).all()


def test_cli_build_and_search_on_milvus_lite(mixed_corpus: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    rc = main(["index", "build", "--model", "py:hash_embedder:HashEmbedder", "--corpus", str(mixed_corpus),
               "--out", str(tmp_path / "job"), "--backend", "milvus", "--no-progress"])
    assert rc == 0 and "built milvus flat index of 12 items" in capsys.readouterr().out
    assert (tmp_path / "job/index/milvus.db").exists()
    assert main(["search", "--index", str(tmp_path / "job"), "--image", str(mixed_corpus.parent / "images/red.png"),
                 "--modality", "image", "-k", "2", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["id"] for r in results][0] == "img:red" and {r["modality"] for r in results} == {"image"}
