"""The Milvus backend: the same `Index` API on Milvus Lite (a local `*.db` file) or a Milvus server/cluster.

`uri` decides where: a file path such as `runs/idx/index/milvus.db` starts an embedded Milvus Lite; a URI such
as `http://milvus.internal:19530` reaches a standalone server or a distributed cluster — no other code changes.
Records live in the collection itself (did is the primary key; modality, text and image are scalar fields),
so a cluster needs no local sidecar, and the modality filter is a Milvus boolean expression evaluated inside
the engine. Saving writes index.json (how to reconnect) atomically; the vectors are Milvus's to keep.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from umr.errors import UmrError
from umr.index.base import (
    INDEX_FORMAT_VERSION,
    MODALITIES,
    Index,
    SearchResult,
    as_records,
    check_vectors,
    default_pq_m,
    fill_results,
    normalise_modalities,
    read_index_json,
)
from umr.items import Item
from umr.runtime.atomic import atomic_write_json

#: Milvus VARCHAR limits; longer texts are cut when stored (the vectors are unaffected).
MAX_TEXT, MAX_PATH, MAX_ID = 16_384, 4096, 512
INSERT_BATCH = 2000


def is_local(uri: str) -> bool:
    """A Milvus Lite file path (rather than a server URI)."""
    return "://" not in uri and not uri.startswith("unix:")


def _quote(values: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


class MilvusIndex(Index):
    """Milvus collection: did (primary key), vector, modality, text, image. kind: flat | hnsw | ivfpq."""

    backend = "milvus"

    def __init__(self, dim: int, kind: str = "flat", *, uri: str, collection: str = "umr", overwrite: bool = False,
                 hnsw_m: int = 32, ef_construction: int = 100, ef_search: int = 128, nlist: int | None = None,
                 pq_m: int | None = None, nprobe: int = 16, info: dict[str, Any] | None = None,
                 _create: bool = True) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:
            raise UmrError("the milvus backend needs pymilvus (and milvus-lite for local files): "
                           "pip install 'umr[milvus]'") from exc
        self.dim, self.kind, self.uri, self.collection = int(dim), kind, str(uri), collection
        self.params = {"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search,
                       "nlist": nlist, "pq_m": pq_m, "nprobe": nprobe}
        self.info = dict(info or {})
        if is_local(self.uri):
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        self.client = MilvusClient(uri=self.uri)
        exists = self.client.has_collection(collection)
        if not _create:
            if not exists:
                raise UmrError(f"Milvus collection {collection!r} not found at {self.uri}; rebuild the index")
            return
        if exists and not overwrite:
            raise UmrError(f"Milvus collection {collection!r} already exists at {self.uri}; load it with "
                           "load_index(), pick another collection, or pass overwrite=True (--reindex)")
        if exists:
            self.client.drop_collection(collection)
        self._create_collection()

    def _index_params(self) -> tuple[str, dict[str, Any]]:
        if self.kind == "hnsw":
            return "HNSW", {"M": self.params["hnsw_m"], "efConstruction": self.params["ef_construction"]}
        if self.kind == "ivfpq" and is_local(self.uri):
            # Milvus Lite has no IVF_PQ (it would silently search brute force): its nearest compressed IVF.
            warnings.warn("Milvus Lite does not implement IVF_PQ; using IVF_SQ8 (8-bit scalar quantisation). "
                          "A Milvus server or cluster gets IVF_PQ.", stacklevel=3)
            return "IVF_SQ8", {"nlist": self.params["nlist"] or 1024}
        if self.kind == "ivfpq":
            m = self.params["pq_m"] or default_pq_m(self.dim)
            return "IVF_PQ", {"nlist": self.params["nlist"] or 1024, "m": m, "nbits": 8}
        return "FLAT", {}

    def _create_collection(self) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("did", DataType.VARCHAR, is_primary=True, max_length=MAX_ID)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("modality", DataType.VARCHAR, max_length=32)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field("image", DataType.VARCHAR, max_length=MAX_PATH)
        index_type, params = self._index_params()
        self.engine_index = index_type
        index_params = self.client.prepare_index_params()
        index_params.add_index("vector", index_type=index_type, metric_type="IP", params=params)
        index_params.add_index("modality", index_type="INVERTED")  # the filter runs on it at query time
        # Strong consistency: a search right after add/delete sees them (the Index contract).
        self.client.create_collection(self.collection, schema=schema, index_params=index_params,
                                      consistency_level="Strong")

    # -- writes ----------------------------------------------------------------------------------------------
    def add(self, vectors: np.ndarray, records: Sequence[dict[str, Any] | Item]) -> None:
        vectors = check_vectors(vectors, self.dim)
        recs = as_records(records)
        if len(recs) != len(vectors):
            raise UmrError(f"{len(vectors)} vectors but {len(recs)} records; give one record per vector")
        dids = [r["id"] for r in recs]
        if len(set(dids)) != len(dids):
            raise UmrError("ids appear twice in the records being added; ids must be unique")
        for r in recs:
            if len(r["id"]) > MAX_ID:
                raise UmrError(f"id {r['id'][:40]!r}… is longer than Milvus's {MAX_ID}-character key limit")
        present = [d for start in range(0, len(dids), INSERT_BATCH)  # checked in batches: Milvus caps a get
                   for d, r in zip(dids[start:start + INSERT_BATCH], self.get(dids[start:start + INSERT_BATCH]),
                                   strict=True) if r is not None]
        if present:
            raise UmrError(f"id {present[0]!r} is already in the index ({len(present)} such ids); delete them "
                           "first to replace them")
        if any(len(r.get("text") or "") > MAX_TEXT for r in recs):
            warnings.warn(f"texts longer than {MAX_TEXT} characters are stored cut (vectors are unaffected)",
                          stacklevel=2)
        for start in range(0, len(recs), INSERT_BATCH):
            rows = [{"did": r["id"], "vector": v, "modality": r["modality"], "text": (r.get("text") or "")[:MAX_TEXT],
                     "image": r.get("image") or ""}
                    for r, v in zip(recs[start:start + INSERT_BATCH], vectors[start:start + INSERT_BATCH],
                                    strict=True)]
            self.client.insert(self.collection, rows)

    def delete(self, ids: Iterable[str]) -> int:
        present = [r["id"] for r in self.get(list(dict.fromkeys(ids))) if r is not None]
        if present:
            self.client.delete(self.collection, ids=present)
        return len(present)

    # -- reads -----------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int = 10, modality: str | Sequence[str] | None = None, *,
               ef_search: int | None = None, nprobe: int | None = None) -> SearchResult:
        """Top-k by inner product: scores float32 [n, k] (-inf filler), ids object [n, k] (None filler)."""
        if k < 1:
            raise UmrError(f"k must be ≥ 1, got {k}")
        q = check_vectors(queries, self.dim, "queries")
        wanted = normalise_modalities(modality)
        out = fill_results(len(q), k)
        params: dict[str, Any] = {}
        if self.kind == "hnsw":
            params["ef"] = max(k, ef_search or self.params["ef_search"])
        elif self.kind == "ivfpq":
            params["nprobe"] = nprobe or self.params["nprobe"]
        hits = self.client.search(self.collection, data=list(q), limit=k, anns_field="vector",
                                  filter=f"modality in {_quote(wanted)}" if wanted else "",
                                  search_params={"metric_type": "IP", "params": params})
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                out.scores[row, col] = hit["distance"]
                out.ids[row, col] = hit["did"] if "did" in hit else hit["id"]
        return out

    def get(self, ids: Iterable[str]) -> list[dict[str, Any] | None]:
        ids = list(ids)
        if not ids:
            return []
        rows = self.client.get(self.collection, ids=ids, output_fields=["did", "modality", "text", "image"])
        found = {r["did"]: {"id": r["did"], "modality": r["modality"], "text": r["text"] or None,
                            "image": r["image"] or None} for r in rows}
        return [found.get(i) for i in ids]

    def _count(self, expr: str = "") -> int:
        return int(self.client.query(self.collection, filter=expr, output_fields=["count(*)"])[0]["count(*)"])

    def __len__(self) -> int:
        return self._count()

    def modality_counts(self) -> dict[str, int]:
        counts = {m: self._count(f"modality == {json.dumps(m)}") for m in MODALITIES}
        return {m: c for m, c in sorted(counts.items()) if c}

    # -- persistence -----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Flush Milvus and write index.json (how to reconnect: URI — relative for a Lite file inside `path`)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.client.flush(self.collection)
        uri = self.uri
        if is_local(uri) and Path(uri).resolve().is_relative_to(path.resolve()):
            uri = os.path.relpath(Path(uri).resolve(), path.resolve())
        old = read_index_json(path) if (path / "index.json").exists() else {}
        atomic_write_json(path / "index.json", {
            "format_version": INDEX_FORMAT_VERSION, "backend": self.backend, "type": self.kind, "dim": self.dim,
            "metric": "ip", "generation": int(old.get("generation", 0)) + 1, "count": len(self), "uri": uri,
            "collection": self.collection, "engine_index": getattr(self, "engine_index", None),
            "params": self.params, "info": self.info})

    @classmethod
    def load(cls, path: str | Path, mmap: bool = False) -> MilvusIndex:
        """Reconnect to the collection recorded in index.json (mmap does not apply: Milvus manages memory)."""
        path = Path(path)
        spec = read_index_json(path)
        uri = spec["uri"]
        if is_local(uri) and not Path(uri).is_absolute():
            uri = str(path / uri)
            if not Path(uri).exists():
                raise FileNotFoundError(f"Milvus Lite file {uri} (listed in {path / 'index.json'}) is missing")
        params = {k: v for k, v in spec.get("params", {}).items() if k in
                  ("hnsw_m", "ef_construction", "ef_search", "nlist", "pq_m", "nprobe")}
        index = cls(int(spec["dim"]), spec.get("type", "flat"), uri=uri, collection=spec["collection"],
                    info=spec.get("info", {}), _create=False, **params)
        desc = index.client.describe_collection(index.collection)
        field = next((f for f in desc["fields"] if f["name"] == "vector"), None)
        got = int(field["params"]["dim"]) if field else None
        if got != index.dim:
            raise UmrError(f"wrong vector dimension: collection {index.collection!r} at {uri} holds {got}-d "
                           f"vectors, {path / 'index.json'} says {index.dim}")
        return index

    def close(self) -> None:
        self.client.close()
