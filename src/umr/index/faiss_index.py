"""The embedded FAISS backend: flat (exact), HNSW or IVF-PQ, one sub-index per modality, SQLite records.

Modality filter — why one sub-index per modality, not an IDSelector or over-fetching:
  * exact for any selectivity: "images only" searches only the image sub-index, so it always returns k
    images when there are k; over-fetch + filter can come back short, and HNSW with a selective IDSelector
    walks a graph mostly made of rejected nodes (recall drops unless efSearch grows with 1/selectivity);
  * fast: flat search keeps its BLAS path (faiss's flat search with a non-range selector falls back to a
    scalar loop), and a filtered search costs only the matching part of the corpus;
  * modalities are a closed handful (text, image, image+text), so an unfiltered search merges at most a few
    top-k lists — for a one-modality corpus it is exactly one faiss search.
Deletes: flat and IVF remove vectors for real; HNSW cannot, so deleted labels become tombstones that an
IDSelector masks at search time (few, so cheap) until the index is rebuilt.

Saved layout (a directory): index.json (the commit point), meta.g{N}.sqlite, part-{modality}.g{N}.faiss.
`save` writes generation N+1 beside N and then replaces index.json atomically, so a crash mid-save leaves the
previous generation loadable; old-generation files are deleted only after the switch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from umr.errors import UmrError
from umr.index.base import (
    INDEX_FORMAT_VERSION,
    Index,
    SearchResult,
    as_records,
    check_vectors,
    default_pq_m,
    fill_results,
    normalise_modalities,
    read_index_json,
)
from umr.index.metadata import MetadataStore
from umr.items import Item
from umr.runtime.atomic import atomic_write, atomic_write_json

#: IVF-PQ needs a training sample; a sub-index first created from fewer vectors than this stays flat (exact).
MIN_IVF_TRAIN = 1000


def _slug(modality: str) -> str:
    return modality.replace(",", "+")


class FaissIndex(Index):
    """FAISS inner-product index. kind: "flat" | "hnsw" | "ivfpq" (see module docstring for the design)."""

    backend = "faiss"

    def __init__(self, dim: int, kind: str = "flat", *, hnsw_m: int = 32, ef_construction: int = 100,
                 ef_search: int = 128, nlist: int | None = None, pq_m: int | None = None, nprobe: int = 16,
                 info: dict[str, Any] | None = None) -> None:
        self.dim, self.kind = int(dim), kind
        self.params = {"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search,
                       "nlist": nlist, "pq_m": pq_m, "nprobe": nprobe}
        self.info = dict(info or {})
        self.meta = MetadataStore()
        self.parts: dict[str, faiss.Index] = {}
        self.part_kinds: dict[str, str] = {}
        self._dids = np.full(0, None, dtype=object)  # label → did (None once deleted); vectorised lookup
        self._readonly = False
        # mod → (inner faiss index, position → label array or None for IVF, tombstone selector or None)
        self._routes: dict[str, tuple[faiss.Index, np.ndarray | None, Any]] = {}

    # -- building --------------------------------------------------------------------------------------------
    def _new_part(self, sample: np.ndarray) -> tuple[faiss.Index, str]:
        kind = self.kind
        if kind == "ivfpq" and len(sample) < MIN_IVF_TRAIN:
            warnings.warn(f"IVF-PQ needs ≥ {MIN_IVF_TRAIN} training vectors per modality, got {len(sample)}; "
                          "this modality uses an exact flat sub-index (call train() with a larger sample)",
                          stacklevel=3)
            kind = "flat"
        if kind == "flat":
            base: faiss.Index = faiss.IndexFlatIP(self.dim)
        elif kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, self.params["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = self.params["ef_construction"]
        else:
            n = len(sample)
            nlist = self.params["nlist"] or max(1, min(int(4 * math.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlatIP(self.dim)
            base = faiss.IndexIVFPQ(quantizer, self.dim, nlist, self.params["pq_m"] or default_pq_m(self.dim), 8,
                                    faiss.METRIC_INNER_PRODUCT)
            base.train(sample)
            return base, kind  # IVF stores ids itself (an IDMap over IVF would break remove_ids)
        return faiss.IndexIDMap2(base), kind

    def train(self, vectors: np.ndarray, modalities: Sequence[str]) -> None:
        """Create (and for IVF-PQ, train) the sub-index of each modality from a representative sample."""
        self._check_writable()
        vectors = check_vectors(vectors, self.dim, "training vectors")
        mods = np.array([normalise_modalities(m)[0] for m in modalities], dtype=object)  # type: ignore[index]
        for mod in dict.fromkeys(mods):
            if mod not in self.parts:
                self.parts[mod], self.part_kinds[mod] = self._new_part(vectors[mods == mod])
        self._routes = {}

    def add(self, vectors: np.ndarray, records: Sequence[dict[str, Any] | Item]) -> None:
        self._check_writable()
        vectors = check_vectors(vectors, self.dim)
        recs = as_records(records)
        if len(recs) != len(vectors):
            raise UmrError(f"{len(vectors)} vectors but {len(recs)} records; give one record per vector")
        labels = self.meta.add(recs)
        mods = np.array([r["modality"] for r in recs], dtype=object)
        for mod in dict.fromkeys(mods):
            rows = np.flatnonzero(mods == mod)
            if mod not in self.parts:
                self.parts[mod], self.part_kinds[mod] = self._new_part(vectors[rows])
            self.parts[mod].add_with_ids(vectors[rows], labels[rows])
        self._routes = {}
        if len(labels):
            grown = np.full(int(labels[-1]) + 1, None, dtype=object)
            grown[: len(self._dids)] = self._dids
            grown[labels] = [r["id"] for r in recs]
            self._dids = grown

    def delete(self, ids: Iterable[str]) -> int:
        self._check_writable()
        removed = self.meta.delete(ids)
        by_mod: dict[str, list[int]] = {}
        for label, mod in removed:
            by_mod.setdefault(mod, []).append(label)
            self._dids[label] = None
        for mod, labels in by_mod.items():
            if self.part_kinds[mod] == "hnsw":
                self.meta.add_tombstones(labels)
            else:
                self.parts[mod].remove_ids(np.array(labels, dtype=np.int64))
        self._routes = {}
        return len(removed)

    def _route(self, mod: str) -> tuple[faiss.Index, np.ndarray | None, Any]:
        """The faiss structure to search and how to map its answers back to labels, cached until a change.

        We search *inside* the IDMap and translate positions → labels with numpy: faiss's IndexIDMap.search
        runs an OpenMP loop for that translation which costs milliseconds per call on a busy machine (a 10×
        slowdown of one-query HNSW searches, measured by benchmarks/search.py).
        """
        if mod not in self._routes:
            part, sel = self.parts[mod], None
            if isinstance(part, faiss.IndexIDMap2 | faiss.IndexIDMap):
                inner, id_map = faiss.downcast_index(part.index), faiss.vector_to_array(part.id_map).astype(np.int64)
                tomb = self.meta.tombstones() if self.part_kinds[mod] == "hnsw" else np.zeros(0, np.int64)
                dead = np.flatnonzero(np.isin(id_map, tomb)).astype(np.int64) if len(tomb) else tomb
                if len(dead):  # the search parameters hold a raw pointer: the selector lives in this cache
                    sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(dead))
            else:
                inner, id_map = part, None
            self._routes[mod] = (inner, id_map, sel)
        return self._routes[mod]

    def _check_writable(self) -> None:
        if self._readonly:
            raise UmrError("this index was loaded memory-mapped (read-only); load it with mmap=False to modify")

    # -- search ----------------------------------------------------------------------------------------------
    def _search_part(self, mod: str, q: np.ndarray, k: int, ef_search: int | None,
                     nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
        inner, id_map, sel = self._route(mod)
        kind, params = self.part_kinds[mod], None
        if kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=ef_search or self.params["ef_search"])
            if sel is not None:
                params.sel = sel
        elif kind == "ivfpq":
            params = faiss.SearchParametersIVF(nprobe=nprobe or self.params["nprobe"])
        scores, pos = inner.search(q, k, params=params)
        if id_map is None:
            return scores, pos
        return scores, np.where(pos >= 0, id_map[np.maximum(pos, 0)], -1)

    def search(self, queries: np.ndarray, k: int = 10, modality: str | Sequence[str] | None = None, *,
               ef_search: int | None = None, nprobe: int | None = None) -> SearchResult:
        """Top-k by inner product: scores float32 [n, k] (-inf filler), ids object [n, k] (None filler).

        ef_search (HNSW) and nprobe (IVF-PQ) trade speed for recall per call.
        """
        if k < 1:
            raise UmrError(f"k must be ≥ 1, got {k}")
        q = check_vectors(queries, self.dim, "queries")
        wanted = normalise_modalities(modality)
        mods = [m for m in self.parts if (wanted is None or m in wanted) and self.parts[m].ntotal > 0]
        if not mods:
            return fill_results(len(q), k)
        results = [self._search_part(m, q, k, ef_search, nprobe) for m in mods]
        if len(results) == 1:
            scores, labels = results[0]
        else:  # merge the per-modality top-k lists
            scores = np.concatenate([r[0] for r in results], axis=1)
            labels = np.concatenate([r[1] for r in results], axis=1)
            scores[labels < 0] = -np.inf
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            scores, labels = np.take_along_axis(scores, top, 1), np.take_along_axis(labels, top, 1)
        found = labels >= 0
        ids = np.full(labels.shape, None, dtype=object)
        ids[found] = self._dids[labels[found]]
        scores = np.where(found, scores, np.float32(-np.inf)).astype(np.float32, copy=False)
        return SearchResult(scores, ids)

    def get(self, ids: Iterable[str]) -> list[dict[str, Any] | None]:
        return self.meta.get(ids)

    def __len__(self) -> int:
        return len(self.meta)

    def modality_counts(self) -> dict[str, int]:
        return self.meta.modality_counts()

    # -- persistence -----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        old = read_index_json(path) if (path / "index.json").exists() else None
        gen = int(old.get("generation", 0)) + 1 if old else 1
        parts = {}
        for mod, part in self.parts.items():
            name = f"part-{_slug(mod)}.g{gen}.faiss"
            atomic_write(path / name, lambda tmp, part=part: faiss.write_index(part, str(tmp)))
            parts[mod] = {"file": name, "kind": self.part_kinds[mod], "count": int(part.ntotal)}
        self.meta.save(path / f"meta.g{gen}.sqlite")
        atomic_write_json(path / "index.json", {
            "format_version": INDEX_FORMAT_VERSION, "backend": self.backend, "type": self.kind, "dim": self.dim,
            "metric": "ip", "generation": gen, "count": len(self), "params": self.params,
            "meta": f"meta.g{gen}.sqlite", "parts": parts, "info": self.info})
        keep = {"index.json", f"meta.g{gen}.sqlite", *(p["file"] for p in parts.values())}
        for stale in path.iterdir():  # the previous generation, now unreferenced
            if stale.is_file() and stale.name not in keep and (stale.suffix in (".faiss", ".sqlite")):
                stale.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = False) -> FaissIndex:
        """Load a saved index. mmap=True maps flat vectors from disk (read-only; RAM stays small)."""
        path = Path(path)
        spec = read_index_json(path)
        params = {k: v for k, v in spec.get("params", {}).items() if k in
                  ("hnsw_m", "ef_construction", "ef_search", "nlist", "pq_m", "nprobe")}
        index = cls(int(spec["dim"]), spec.get("type", "flat"), info=spec.get("info", {}), **params)
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        for mod, part in spec.get("parts", {}).items():
            file = path / part["file"]
            if not file.exists():
                raise FileNotFoundError(f"{file} is missing (listed in {path / 'index.json'}); the index directory "
                                        "is incomplete — rebuild it with `umr index build --reindex`")
            try:
                index.parts[mod] = faiss.read_index(str(file), flags)
            except RuntimeError as exc:
                raise UmrError(f"{file} is not a readable faiss index ({str(exc).splitlines()[0]}); rebuild "
                               "it with `umr index build --reindex`") from exc
            index.part_kinds[mod] = part.get("kind", spec.get("type", "flat"))
            if index.parts[mod].d != index.dim:
                raise UmrError(f"wrong vector dimension: {file} holds {index.parts[mod].d}-d vectors, "
                               f"index.json says {index.dim}")
        index.meta = MetadataStore(path / spec["meta"])
        labels, dids = index.meta.label_table()
        index._dids = np.full(index.meta.next_label, None, dtype=object)
        index._dids[labels] = dids
        stored = sum(int(p.ntotal) for p in index.parts.values()) - len(index.meta.tombstones())
        if stored != len(index.meta):
            raise UmrError(f"{path}: the faiss files hold {stored} live vectors but the metadata has "
                           f"{len(index.meta)} records (files from different saves?); rebuild the index")
        index._readonly = mmap
        return index
