"""Retriever consistency (GME): a synthetic query is kept only if a retriever finds its positive near the top.

`positive_ranks` embeds the queries (with their instructions) and the kind's candidate pool with one embedder and
returns each query's positive's rank: 1 + the candidates scoring higher (ties go to the earlier pool entry, as
in the evaluator). The pipeline keeps rank ≤ top_k.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from umr.items import Item
from umr.models.base import Embedder


def pool_fingerprint(filter_name: str, keys: list[str]) -> str:
    """A short hash of (filter model, pool contents): resume files are only reused for the same pool."""
    blob = json.dumps([filter_name, keys], ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:12]


def embed_pool(embedder: Embedder, pool: list[Item], cache: Path | None, batch_size: int = 16) -> np.ndarray:
    """Pool embeddings [n, d], read from / written to `cache` (.npy) when given."""
    if cache is not None and cache.is_file():
        emb = np.load(cache)
        if emb.shape[0] == len(pool):
            return emb
    emb = embedder.encode_document(pool, batch_size=batch_size)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npy")
        np.save(tmp, emb)
        tmp.replace(cache)
    return emb


def positive_ranks(embedder: Embedder, queries: list[Item], positives: list[int], pool_emb: np.ndarray,
                   batch_size: int = 16) -> list[int]:
    """Rank (1 = top) of pool row positives[i] for queries[i], scored by cosine against pool_emb [n, d]."""
    if not queries:
        return []
    # encode_query without `instruction=` keeps each item's own instruction
    q = embedder.encode_query(queries, batch_size=batch_size).astype(np.float64)
    scores = q @ pool_emb.astype(np.float64).T  # [m, n]
    pos = np.asarray(positives, dtype=np.int64)
    pos_scores = scores[np.arange(len(pos)), pos][:, None]
    earlier = np.arange(pool_emb.shape[0])[None, :] < pos[:, None]
    beaten = (scores > pos_scores) | ((scores == pos_scores) & earlier)
    return (1 + beaten.sum(axis=1)).astype(int).tolist()
