"""SQLite sidecar: labels never reused, copy-on-write after load, atomic save, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from umr.index.metadata import MetadataStore


def recs(*ids: str) -> list[dict]:
    return [{"id": i, "modality": "image" if i.startswith("img") else "text", "text": f"about {i}", "image": None}
            for i in ids]


def test_labels_are_never_reused(tmp_path: Path) -> None:
    store = MetadataStore()
    np.testing.assert_array_equal(store.add(recs("a", "b", "img1")), [0, 1, 2])
    assert store.delete(["b", "zz"]) == [(1, "text")]
    np.testing.assert_array_equal(store.add(recs("b")), [3])
    store.save(tmp_path / "m.sqlite")
    again = MetadataStore(tmp_path / "m.sqlite")
    assert again.next_label == 4 and len(again) == 3
    assert again.modality_counts() == {"image": 1, "text": 2}
    labels, dids = again.label_table()
    assert labels.tolist() == [0, 2, 3] and dids == ["a", "img1", "b"]


def test_loaded_store_is_copy_on_write(tmp_path: Path) -> None:
    store = MetadataStore()
    store.add(recs("a", "b"))
    store.save(tmp_path / "m.sqlite")
    before = (tmp_path / "m.sqlite").read_bytes()
    loaded = MetadataStore(tmp_path / "m.sqlite")
    loaded.add(recs("c"))
    loaded.delete(["a"])
    assert (tmp_path / "m.sqlite").read_bytes() == before, "the saved file changes only through save()"
    assert [r and r["id"] for r in loaded.get(["a", "b", "c"])] == [None, "b", "c"]
    loaded.save(tmp_path / "m.sqlite")
    assert len(MetadataStore(tmp_path / "m.sqlite")) == 2


def test_errors(tmp_path: Path) -> None:
    store = MetadataStore()
    store.add(recs("a"))
    with pytest.raises(ValueError, match="'a' is already in the index"):
        store.add(recs("b", "a"))
    assert len(store) == 1, "a refused batch adds nothing"
    with pytest.raises(ValueError, match="'c' appears twice"):
        store.add(recs("c", "c"))
    (tmp_path / "bad.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="bad.sqlite is not a readable SQLite database"):
        MetadataStore(tmp_path / "bad.sqlite")
    with pytest.raises(FileNotFoundError, match="missing"):
        MetadataStore(tmp_path / "nope.sqlite")


def test_many_ids_beyond_the_sqlite_parameter_limit() -> None:
    store = MetadataStore()
    ids = [f"d{i}" for i in range(2500)]
    store.add(recs(*ids))
    assert [r["id"] for r in store.get(ids[::-1])] == ids[::-1]
    assert len(store.delete(ids[:2000])) == 2000 and len(store) == 500
