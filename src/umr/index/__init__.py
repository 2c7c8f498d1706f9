"""Embedding jobs and search indexes: resumable sharded embedding (`run_embedding_job` → `EmbeddingStore`),
then an inner-product `Index` (FAISS embedded, or Milvus Lite / server / cluster) with per-item records.

    from umr.index import run_embedding_job, build_index, create_index, load_index
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Index": "umr.index.base", "SearchResult": "umr.index.base", "create_index": "umr.index.base",
    "load_index": "umr.index.base", "EmbeddingStore": "umr.index.embed_job", "StoreError": "umr.index.embed_job",
    "run_embedding_job": "umr.index.embed_job", "build_index": "umr.index.build",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Lazy: `import umr.index` stays light (no faiss / torch until a name is used)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'umr.index' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
