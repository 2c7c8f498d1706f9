"""SQLite sidecar for an index: integer label (the vector's id in FAISS) ↔ did, modality, text, image.

Why SQLite: one file, in the standard library, indexed lookups by did and by label, and `Connection.backup`
gives a consistent snapshot to save atomically. A loaded store is opened read-only and copied into memory
on the first write (copy-on-write), so a saved index on disk changes only when `save` commits a new one.
Labels are never reused: `next_label` survives deletes, so a stale label can never point at a new item.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from umr.errors import UmrError
from umr.runtime.atomic import temp_path

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (label INTEGER PRIMARY KEY, did TEXT NOT NULL UNIQUE, modality TEXT NOT NULL,
                                  text TEXT, image TEXT);
CREATE INDEX IF NOT EXISTS items_modality ON items(modality);
CREATE TABLE IF NOT EXISTS tombstones (label INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_CHUNK = 900  # stays under SQLite's default limit on bound parameters per statement


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i:i + _CHUNK]


class MetadataStore:
    """Records keyed by did and by label. `path=None` is a new in-memory store."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        if self.path is None:
            self._db = sqlite3.connect(":memory:", check_same_thread=False)
            self._db.executescript(SCHEMA)
            self._readonly = False
        else:
            if not self.path.exists():
                raise FileNotFoundError(f"index metadata {self.path} is missing; the index directory is incomplete")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._readonly = True
            try:
                self._db.execute("SELECT count(*) FROM items").fetchone()
            except sqlite3.DatabaseError as exc:
                raise UmrError(f"index metadata {self.path} is not a readable SQLite database ({exc}); "
                               "rebuild the index") from exc

    def _writable(self) -> sqlite3.Connection:
        if self._readonly:  # copy-on-write: never modify the saved file in place
            mem = sqlite3.connect(":memory:", check_same_thread=False)
            self._db.backup(mem)
            self._db.close()
            self._db, self._readonly = mem, False
        return self._db

    # -- writes ----------------------------------------------------------------------------------------------
    def add(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        """Insert records, assigning fresh labels (int64 [n]). A duplicate did raises before anything changes."""
        dids = [r["id"] for r in records]
        if len(set(dids)) != len(dids):
            seen: set[str] = set()
            dup = next(d for d in dids if d in seen or seen.add(d))  # type: ignore[func-returns-value]
            raise UmrError(f"id {dup!r} appears twice in the records being added; ids must be unique")
        present = [r["id"] for r in self.get(dids) if r is not None]
        if present:
            raise UmrError(f"id {present[0]!r} is already in the index ({len(present)} such ids); delete them "
                           "first to replace them")
        db = self._writable()
        start = self.next_label
        labels = np.arange(start, start + len(records), dtype=np.int64)
        with db:
            db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)",
                           [(int(lab), r["id"], r["modality"], r.get("text"), r.get("image"))
                            for lab, r in zip(labels, records, strict=True)])
            db.execute("INSERT OR REPLACE INTO info VALUES ('next_label', ?)", (str(start + len(records)),))
        return labels

    def delete(self, dids: Iterable[str]) -> list[tuple[int, str]]:
        """Remove records; returns (label, modality) of each removed one (unknown dids are skipped)."""
        dids = list(dict.fromkeys(dids))
        rows = self._select("did", dids, "label, modality")
        if rows:
            db = self._writable()
            with db:
                db.executemany("DELETE FROM items WHERE label = ?", [(lab,) for lab, _ in rows])
        return [(int(lab), mod) for lab, mod in rows]

    def add_tombstones(self, labels: Iterable[int]) -> None:
        """Labels deleted from the records but still inside an engine that cannot remove (HNSW)."""
        db = self._writable()
        with db:
            db.executemany("INSERT OR IGNORE INTO tombstones VALUES (?)", [(int(lab),) for lab in labels])

    # -- reads -----------------------------------------------------------------------------------------------
    def _select(self, column: str, values: Sequence[Any], fields: str) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(values)):
            marks = ",".join("?" * len(chunk))
            out += self._db.execute(f"SELECT {fields} FROM items WHERE {column} IN ({marks})", list(chunk)).fetchall()
        return out

    def get(self, dids: Iterable[str]) -> list[dict[str, Any] | None]:
        dids = list(dids)
        found = {row[0]: {"id": row[0], "modality": row[1], "text": row[2], "image": row[3]}
                 for row in self._select("did", dids, "did, modality, text, image")}
        return [found.get(d) for d in dids]

    @property
    def next_label(self) -> int:
        row = self._db.execute("SELECT value FROM info WHERE key = 'next_label'").fetchone()
        return int(row[0]) if row else 0

    def label_table(self) -> tuple[np.ndarray, list[str]]:
        """All (labels int64 [n], dids) — to build the in-memory label → did array used by search."""
        rows = self._db.execute("SELECT label, did FROM items ORDER BY label").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def tombstones(self) -> np.ndarray:
        return np.array([r[0] for r in self._db.execute("SELECT label FROM tombstones")], dtype=np.int64)

    def modality_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT modality, count(*) FROM items GROUP BY modality ORDER BY modality"))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM items").fetchone()[0])

    def save(self, path: str | Path) -> None:
        """Consistent snapshot to `path`, atomically (temp file + os.replace)."""
        import os

        path = Path(path)
        tmp = temp_path(path)
        try:
            dst = sqlite3.connect(tmp)
            with dst:
                self._db.backup(dst)
            dst.close()
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        self._db.close()
