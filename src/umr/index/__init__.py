"""Embedding jobs and search indexes: resumable sharded embedding (`run_embedding_job` → `EmbeddingStore`),
then an inner-product `Index` (FAISS embedded, or Milvus Lite / server / cluster) with per-item records.

    from umr.index import run_embedding_job, build_index, create_index, load_index

The factories live here, above the backends they choose between: `base` defines the contract and each backend
builds on it, so nothing below this file imports a backend (no circle between base and faiss / milvus).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from umr.errors import UmrError

if TYPE_CHECKING:
    from umr.index.base import Index

_EXPORTS = {
    "Index": "umr.index.base", "SearchResult": "umr.index.base", "EmbeddingStore": "umr.index.embed_job",
    "StoreError": "umr.index.embed_job", "run_embedding_job": "umr.index.embed_job", "build_index": "umr.index.build",
}
__all__ = sorted([*_EXPORTS, "create_index", "load_index"])


def __getattr__(name: str) -> Any:
    """Lazy: `import umr.index` stays light (no faiss / torch until a name is used)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'umr.index' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def create_index(dim: int, kind: str = "flat", backend: str = "faiss", **options: Any) -> Index:
    """A new empty index. backend "faiss" (embedded) or "milvus" (options: uri=, collection=)."""
    from umr.index.base import BACKENDS, KINDS

    if kind not in KINDS:
        raise UmrError(f"unknown index type {kind!r}; use one of {', '.join(KINDS)}")
    if backend == "faiss":
        from umr.index.faiss_index import FaissIndex

        return FaissIndex(dim, kind, **options)
    if backend == "milvus":
        from umr.index.milvus_index import MilvusIndex

        return MilvusIndex(dim, kind, **options)
    raise UmrError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")


def load_index(path: str | Path, mmap: bool = False) -> Index:
    """Load any saved index, dispatching on the backend recorded in index.json."""
    from umr.index.base import read_index_json

    backend = read_index_json(path).get("backend", "faiss")
    if backend == "faiss":
        from umr.index.faiss_index import FaissIndex

        return FaissIndex.load(path, mmap=mmap)
    if backend == "milvus":
        from umr.index.milvus_index import MilvusIndex

        return MilvusIndex.load(path, mmap=mmap)
    raise UmrError(f"{path}/index.json names an unknown backend {backend!r}")
