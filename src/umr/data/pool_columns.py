"""A candidate pool held as columns: numpy arrays of dids, modalities and file offsets, not one object a candidate.

    cols = PoolColumns.read(global_pool_file(root, "test"), root)
    cols.row["9:12"]                  # → its row (a sorted-array lookup, no 5.6M-entry dict)
    cols.candidate(7)                 # → Candidate, read back from the file at its offset
    items = cols.items(root)          # a lazy Sequence[Item] for the embedding store (one shard's worth at a time)

M-BEIR's global test pool holds 5.6M candidates; as `Candidate` objects in a dict it costs several GB of Python
objects before a vector is loaded. Here a candidate costs its did and modality as fixed-width strings and one
int64 offset; its text and image path are read from the file when something needs them (re-ranking, mining,
embedding), a few at a time. Reading validates every line exactly as `umr.data.mbeir.read_pool` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from umr.data.mbeir import Candidate, entries_at
from umr.items import Item


class RowLookup(Mapping[str, int]):
    """did → pool row over a sorted copy of the dids (binary search): a Mapping without a dict of every did."""

    def __init__(self, dids: np.ndarray) -> None:
        self._dids = dids
        self._order = np.argsort(dids, kind="stable")
        self._sorted = dids[self._order]

    def get_row(self, did: str) -> int | None:
        i = int(np.searchsorted(self._sorted, did))
        return int(self._order[i]) if i < len(self._sorted) and self._sorted[i] == did else None

    def __getitem__(self, did: str) -> int:
        row = self.get_row(did)
        if row is None:
            raise KeyError(did)
        return row

    def __contains__(self, did: object) -> bool:
        return isinstance(did, str) and self.get_row(did) is not None

    def __iter__(self) -> Iterator[str]:
        return (str(d) for d in self._dids)

    def __len__(self) -> int:
        return len(self._dids)


class PoolColumns:
    """A pool's candidates in pool order: `dids`, `modality` (numpy str arrays), `row` (did → row) and the
    content of any row on demand (`candidate`). Built from a file (offsets) or from Candidates in memory."""

    def __init__(self, dids: np.ndarray, modality: np.ndarray, path: Path | None = None,
                 offsets: np.ndarray | None = None, cands: list[Candidate] | None = None) -> None:
        if (offsets is None) == (cands is None):
            raise ValueError("PoolColumns needs either file offsets or candidates")
        self.dids, self.modality, self.path = dids, modality, path
        self._offsets, self._cands = offsets, cands
        self._row: RowLookup | None = None

    @classmethod
    def read(cls, path: str | Path, root: str | Path, check_images: bool = True) -> PoolColumns:
        """Read and validate a pool file (as `read_pool`), keeping columns and offsets only."""
        path = Path(path)
        dids: list[str] = []
        mods: list[str] = []
        offsets: list[int] = []
        for _, offset, _, did, modality, _, _ in entries_at(path, "did", ("modality", "txt", "img_path"), root,
                                                            check_images):
            dids.append(did)
            mods.append(modality)
            offsets.append(offset)
        return cls(_str_array(dids), _str_array(mods), path, offsets=np.array(offsets, dtype=np.int64))

    @classmethod
    def of(cls, cands: Mapping[str, Candidate] | Sequence[Candidate]) -> PoolColumns:
        """Columns over candidates already in memory (a training set's share of a pool, a test's fixture)."""
        seq = list(cands.values()) if isinstance(cands, Mapping) else list(cands)
        return cls(_str_array([c.did for c in seq]), _str_array([c.modality for c in seq]), cands=seq)

    def __len__(self) -> int:
        return len(self.dids)

    @property
    def row(self) -> RowLookup:
        """did → row (built on first use: an argsort of the dids)."""
        if self._row is None:
            self._row = RowLookup(self.dids)
        return self._row

    def subset(self, rows: np.ndarray) -> PoolColumns:
        """The candidates at `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._cands is not None:
            return PoolColumns(self.dids[rows], self.modality[rows], cands=[self._cands[int(r)] for r in rows])
        return PoolColumns(self.dids[rows], self.modality[rows], self.path, offsets=self._offsets[rows])

    def candidate(self, row: int) -> Candidate:
        return self.candidates([row])[0]

    def candidates(self, rows: Sequence[int] | np.ndarray) -> list[Candidate]:
        """The Candidates at `rows` (read back from the file: one open, one seek per row)."""
        if self._cands is not None:
            return [self._cands[int(r)] for r in rows]
        with self.path.open("rb") as fh:
            return [_parse(fh, int(self._offsets[int(r)])) for r in rows]

    def iter_candidates(self, start: int = 0, end: int | None = None) -> Iterator[Candidate]:
        """Rows start..end-1 in order (a sequential read of the file's part that holds them)."""
        end = len(self) if end is None else min(end, len(self))
        if self._cands is not None:
            yield from self._cands[start:end]
            return
        with self.path.open("rb") as fh:
            for r in range(start, end):
                yield _parse(fh, int(self._offsets[r]))

    def items(self, root: str | Path, formatted: bool = False) -> PoolItems:
        return PoolItems(self, root, formatted)


class PoolItems(Sequence[Item]):
    """The pool's candidates as Items, made a slice at a time (what the embedding store asks for per shard)."""

    def __init__(self, cols: PoolColumns, root: str | Path, formatted: bool = False) -> None:
        self.cols, self.root, self.formatted = cols, root, formatted

    def __len__(self) -> int:
        return len(self.cols)

    @overload
    def __getitem__(self, i: int) -> Item: ...

    @overload
    def __getitem__(self, i: slice) -> list[Item]: ...

    def __getitem__(self, i: int | slice) -> Item | list[Item]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                return [self[j] for j in range(start, stop, step)]
            return [c.to_item(self.root, self.formatted) for c in self.cols.iter_candidates(start, stop)]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.cols.candidate(i).to_item(self.root, self.formatted)


def _str_array(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=str) if values else np.zeros(0, dtype="<U1")


def _parse(fh: Any, offset: int) -> Candidate:
    fh.seek(offset)
    obj = json.loads(fh.readline().decode("utf-8-sig" if offset == 0 else "utf-8"))
    return Candidate(did=obj["did"], modality=obj["modality"], txt=obj.get("txt"), img_path=obj.get("img_path"),
                     src_content=obj.get("src_content"))
