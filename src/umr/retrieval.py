"""The retrieval core that evaluation (`umr.eval.mbeir`), mining (`umr.mine`) and distillation teachers
(`umr.train.distill`) share: embed a pool and its queries (cached, resumable), hold the pool as a `PoolView`
(`umr.pool_view`: columns + one memory-mapped copy of the vectors), search its top-k.

    view = load_pool_view(embedder, pool_file, root, "pool-global-test", cache_dir="runs/cache")
    scores, rows = view.search(query_vectors, k=10)     # float64 [n, k] and int64 [n, k] pool rows, best first
    for name, task_id, view, lists in retrieve(embedder, root, split="train", top=50): ...   # per query set

Multi-process (torchrun, accelerate launch): every rank calls the same functions; the embedding store shards the
work (rank i embeds shards i, i + world, …), rank 0 merges, and every rank then reads the merged vectors. Only
rank 0 searches and yields (`retrieve` yields nothing on the other ranks), so callers that write files write
them once. A multi-process run needs a `cache_dir`: the store is how the ranks share their work.

Ties: the project-wide rule, kept exactly by `PoolView.search` (see `umr.pool_view`).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from umr.data.mbeir import TASKS, Candidate, Query
from umr.data.mbeir_sets import (
    EvalSetRef,
    find_eval_sets,
    global_pool_file,
    instruction_table,
    load_eval_set,
    load_set_pool,
)
from umr.data.pool_columns import PoolColumns
from umr.errors import UmrError
from umr.items import Item, Role
from umr.models.base import Embedder
from umr.pool_view import NEAR_TIE, PoolView, exact_scores
from umr.runtime.distributed import dist_info

__all__ = ["NEAR_TIE", "PoolView", "QuerySet", "Retrieved", "embed_items", "embed_queries", "exact_scores",
           "file_fingerprint", "load_pool_view", "query_instruction", "retrieve"]


def file_fingerprint(path: Path) -> dict[str, Any]:
    """A source file's identity for embedding-cache keys: resolved path, size and mtime (ns).

    A rewritten file (new size or mtime) gets a new key, so its embeddings are recomputed rather than reused.
    """
    st = path.stat()
    return {"file": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def embed_items(embedder: Embedder, items: Sequence[Item], label: str, key: dict[str, Any],
                cache_dir: str | Path | None = None, batch_size: int = 16, show_progress: bool = False,
                store_dtype: str = "float32", shard_size: int = 1000, role: Role = "document") -> np.ndarray:
    """Embed `items` as `role` (`Embedder.encode_role`: queries keep their instructions) → [n, dim] in input order,
    L2-normalised.

    With `cache_dir` the vectors go through the resumable embedding store in `cache_dir/{label}-{digest}`, where
    the digest hashes `embedder.describe()`, the role (queries only, so a document store keeps its key) and `key`
    (e.g. a `file_fingerprint`): a rerun with the same model and source reuses them, an interrupted one resumes.
    The store's merged matrix comes back memory-mapped, in the store's dtype (float32, or float16 with
    `store_dtype`), never copied. Under a multi-process launch every rank embeds its shards and gets the merged
    matrix.
    """
    if not len(items):
        return np.zeros((0, embedder.dim), dtype=np.float32)
    if cache_dir is None:
        if dist_info().world_size > 1:
            raise UmrError("a multi-process run shares its work through the embedding cache: give a cache folder "
                           "(umr eval --cache DIR; not --no-cache)")
        return embedder.encode_role(role, items, batch_size=batch_size, show_progress=show_progress)
    from umr.index.embed_job import run_embedding_job

    spec = {"model": embedder.describe(), **({"role": role} if role != "document" else {}), **key,
            **({"dtype": store_dtype} if store_dtype != "float32" else {})}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    store = run_embedding_job(items, embedder, Path(cache_dir) / f"{label}-{digest}", batch_size=batch_size,
                              shard_size=shard_size, overwrite=True, show_progress=show_progress,
                              store_dtype=store_dtype, wait_merged=True, role=role)
    return store.embeddings(mmap=True)


def query_instruction(q: Query, table: dict, cand_modality: str) -> str | None:
    """The task instruction for query `q` from `instruction_table(root)`, or None when the table has none.

    The table maps (dataset id, query modality, candidate modality) to its prompts; one is chosen by a CRC32 of
    the qid, so every run (eval, mining, teacher) gives a query the same instruction.
    """
    prompts = table.get((q.dataset_id, q.modality, cand_modality))
    return prompts[zlib.crc32(q.qid.encode()) % len(prompts)] if prompts else None


@dataclass
class QuerySet:
    """One eval set's queries embedded as queries: each one's instruction (None without), Item and vector."""

    instructions: list[str | None]
    items: list[Item]
    vectors: np.ndarray  # [n, dim], L2-normalised, in query order


def embed_queries(embedder: Embedder, root: Path, ref: EvalSetRef, queries: Sequence[Query], table: dict,
                  instructions: bool = True, format_text: bool = False, key: dict[str, Any] | None = None,
                  **embed: Any) -> QuerySet:
    """Embed a query set's `queries` with their task instructions (`query_instruction` over `table`; none with
    `instructions=False`), through the cache as `queries-{set}-{split}` (`embed_items` options; `key` adds to the
    cache key). What evaluation, mining and the distillation teacher all embed, so they share one cache.
    format_text: normalise texts and instructions as UniIR does (`Query.to_item`)."""
    cmod = TASKS[ref.task_id][1]
    instr = [query_instruction(q, table, cmod) if instructions else None for q in queries]
    items = [q.to_item(root, i, formatted=format_text) for q, i in zip(queries, instr)]
    cache_key = {**file_fingerprint(ref.query_file), "instructions": instructions,
                 **({"format_text": True} if format_text else {}), **(key or {})}
    vectors = embed_items(embedder, items, f"queries-{ref.name}-{ref.split}", cache_key, role="query", **embed)
    return QuerySet(instr, items, vectors)


def load_pool_view(embedder: Embedder, path: Path, root: Path, label: str, cands: dict[str, Candidate] | None = None,
                   check_images: bool = False, format_text: bool = False, device: str | None = None,
                   kernel: str = "auto", columns: PoolColumns | None = None, **embed: Any) -> PoolView:
    """Read a pool file as columns (or take its `cands`, or `columns` already read), embed it through the cache
    (`embed_items` options)."""
    cols = columns or (PoolColumns.read(path, root, check_images=check_images) if cands is None
                       else PoolColumns.of(cands))
    key = {**file_fingerprint(path), **({"format_text": True} if format_text else {})}
    vectors = embed_items(embedder, cols.items(root, formatted=format_text), label, key, **embed)
    return PoolView(cols, vectors, root, device=device, kernel=kernel)


@dataclass
class Retrieved:
    """One query's retrieval over a pool: the pool's rows in rank order and their scores."""

    query: Query
    instruction: str | None
    rows: np.ndarray  # [top] pool row indices, best first
    scores: np.ndarray  # [top] cosine scores (float64, exact)
    positive_scores: dict[str, float]  # every in-pool positive's score


def retrieve(embedder: Embedder, root: str | Path, split: str = "train", pool: str = "global",
             tasks: list[str] | None = None, top: int = 100, cache_dir: str | Path | None = None,
             batch_size: int = 16, instructions: bool = True, max_per_set: int | None = None,
             search_device: str | None = None) -> Iterator[tuple[str, int, PoolView, list[Retrieved]]]:
    """For each query set of `split`: (set name, task id, pool, every query's top-`top` retrieval).

    Shared by mining and by the distillation teacher (which needs the same top-N lists). `max_per_set` keeps
    each set's first N queries (file order), for teachers whose per-candidate re-ranker cost must stay bounded.
    Multi-process: every rank embeds its share; only rank 0 searches and yields.
    """
    root = Path(root).resolve()
    main = dist_info().is_main
    embed = {"cache_dir": cache_dir, "batch_size": batch_size}
    table = instruction_table(root) if instructions else {}
    shared = load_pool_view(embedder, global_pool_file(root, split), root, f"pool-global-{split}",
                            device=search_device, **embed) if pool == "global" else None
    for ref in find_eval_sets(root, split, tasks):
        # a real-layout training set's pool is its share of the global train pool (umr.data.mbeir_sets)
        view = shared or load_pool_view(embedder, ref.local_pool_file, root, ref.pool_label,
                                        load_set_pool(ref, check_images=False), device=search_device, **embed)
        es = load_eval_set(ref, view.row, check_images=False, strict=False)
        if max_per_set is not None:
            es.queries = es.queries[:max_per_set]
        qs = embed_queries(embedder, root, ref, es.queries, table, instructions,
                           key={"max_per_set": max_per_set}, **embed)
        if not main:
            continue
        q_emb = qs.vectors
        scores, rows = view.search(q_emb, top)
        out = []
        for qi, q in enumerate(es.queries):
            pos = [d for d in es.positives[q.qid] if d in view.row]
            pos_scores = view.exact(np.array([view.row[d] for d in pos], dtype=np.int64), q_emb[qi])
            out.append(Retrieved(q, qs.instructions[qi], rows[qi], scores[qi], dict(zip(pos, pos_scores.tolist()))))
        yield ref.name, ref.task_id, view, out
