"""The retrieval core that evaluation (`umr.eval.mbeir`), mining (`umr.mine`) and distillation teachers
(`umr.train.distill`) share: embed a pool and its queries (cached, resumable), hold the pool as a `PoolView`,
search its top-k.

    view = load_pool_view(embedder, pool_file, root, "pool-global-test", cache_dir="runs/cache")
    scores, rows = view.search(query_vectors, k=10)     # float64 [n, k] and int64 [n, k] pool rows, best first
    for name, task_id, view, lists in retrieve(embedder, root, split="train", top=50): ...   # per query set

Ties (the project-wide rule, docs/mbeir.md): among equal scores the candidate earlier in the pool ranks first, a
stable sort on descending score. The pool sits in a flat `umr.index` index, whose order among tied candidates is
FAISS's (flat inner-product search returns them latest-first, faiss 1.15 CPU), and which can keep any subset of
the candidates tied at the k-th score. So `PoolView.search` re-scores what FAISS returns exactly (float64, one row
at a time, so equal vectors tie exactly), sorts by (score, pool row), and when a candidate below the cut may tie
with the k-th score it fetches every such candidate before cutting: the top-k itself follows the rule.
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
import torch

from umr.data.mbeir import TASKS, Candidate, Query
from umr.data.mbeir_sets import (
    find_eval_sets,
    global_pool_file,
    instruction_table,
    load_eval_set,
    load_pool,
    load_set_pool,
)
from umr.errors import UmrError
from umr.index.base import create_index
from umr.items import Item
from umr.models.base import Embedder

#: FAISS scores are float32 sums in BLAS order; two candidates closer than this may be exact ties in float64
NEAR_TIE = 1e-5


def file_fingerprint(path: Path) -> dict[str, Any]:
    """A source file's identity for embedding-cache keys: resolved path, size and mtime (ns).

    A rewritten file (new size or mtime) gets a new key, so its embeddings are recomputed rather than reused.
    """
    st = path.stat()
    return {"file": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def embed_items(embedder: Embedder, items: list, label: str, key: dict[str, Any], cache_dir: str | Path | None = None,
                batch_size: int = 16, show_progress: bool = False) -> np.ndarray:
    """Embed `items` with `embedder.encode_corpus` → float32 [n, dim] in input order (L2-normalised).

    With `cache_dir` the vectors go through the resumable embedding store in `cache_dir/{label}-{digest}`, where
    the digest hashes `embedder.describe()` and `key` (e.g. a `file_fingerprint`): a rerun with the same model and
    source reuses them, an interrupted one resumes. Wrap the embedder in `QuerySide` to embed queries.
    """
    if not items:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    if cache_dir is None:
        return embedder.encode_corpus(items, batch_size=batch_size, show_progress=show_progress)
    from umr.index.embed_job import run_embedding_job

    digest = hashlib.sha256(json.dumps({"model": embedder.describe(), **key}, sort_keys=True, default=str)
                            .encode()).hexdigest()[:16]
    store = run_embedding_job(items, embedder, Path(cache_dir) / f"{label}-{digest}", batch_size=batch_size,
                              overwrite=True, show_progress=show_progress)
    return np.ascontiguousarray(store.embeddings(mmap=False), dtype=np.float32)


def query_instruction(q: Query, table: dict, cand_modality: str) -> str | None:
    """The task instruction for query `q` from `instruction_table(root)`, or None when the table has none.

    The table maps (dataset id, query modality, candidate modality) to its prompts; one is chosen by a CRC32 of
    the qid, so every run (eval, mining, teacher) gives a query the same instruction.
    """
    prompts = table.get((q.dataset_id, q.modality, cand_modality))
    return prompts[zlib.crc32(q.qid.encode()) % len(prompts)] if prompts else None


class QuerySide(Embedder):
    """Wraps an embedder so that `encode_corpus` embeds *queries* (keeping their instructions).

    Lets query sets go through the resumable embedding store, which calls `encode_corpus`.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = f"{inner.name}[queries]"
        self.max_batch_tokens = inner.max_batch_tokens

    @property
    def dim(self) -> int:
        return self.inner.dim

    def prepare(self, items: Sequence[Item]) -> Any:
        return self.inner.prepare(items)

    def forward(self, batch: Any) -> torch.Tensor:
        return self.inner.forward(batch)

    def cost(self, item: Item) -> int:
        return self.inner.cost(item)

    def encode_corpus(self, items: Any, **kw: Any) -> np.ndarray:
        return self.inner.encode_queries(items, **kw)

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "side": "query"}


def exact_scores(mat: np.ndarray, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """float64 scores of chosen rows, each computed on its own (no BLAS blocking), so equal vectors tie exactly."""
    return (mat[rows].astype(np.float64) * q.astype(np.float64)).sum(axis=1)


class PoolView:
    """A pool's candidates in pool order (`dids`, `cands`, `row` = did → row, `modality`), their embeddings
    `emb` [n, d] and a flat `umr.index` index over them.

    `search` returns each query's top-k pool rows ordered by exact score, the earlier pool row first among equal
    scores, with the cut itself made by that rule (module docstring).
    """

    def __init__(self, cands: dict[str, Candidate], emb: np.ndarray, root: Path | None = None) -> None:
        self.dids = list(cands)
        self.cands = list(cands.values())  # the re-ranker and the miner read candidates' content
        self.row = {d: i for i, d in enumerate(self.dids)}
        self.modality = np.array([c.modality for c in self.cands])
        self.emb = np.ascontiguousarray(emb, dtype=np.float32)
        self.root = root
        self.index = create_index(self.emb.shape[1], "flat")
        if len(self.emb):
            self.index.add(self.emb, [{"id": d, "modality": c.modality} for d, c in cands.items()])

    def __len__(self) -> int:
        return len(self.dids)

    def sub_view(self, cands: dict[str, Candidate], path: Path) -> PoolView:
        """A smaller pool (a local pool) whose vectors are rows of this one's (the same items, embedded once)."""
        missing = [d for d in cands if d not in self.row]
        if missing:
            raise UmrError(f"{path}: {len(missing)} candidate(s) are not in the global pool (e.g. {missing[:3]}); "
                           "evaluate the local pools without local_from_global")
        return PoolView(cands, self.emb[[self.row[d] for d in cands]], self.root)

    def item_dict(self, row: int) -> dict[str, Any]:
        """The candidate at `row` as an Item's dict, image paths resolved against the pool's root."""
        return self.cands[row].to_item(self.root).to_dict()

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of each query row: (scores float64 [n, k], pool rows int64 [n, k]), best first; k ≤ len(pool)."""
        k = min(k, len(self))
        n = len(queries)
        scores, rows = np.zeros((n, k), dtype=np.float64), np.zeros((n, k), dtype=np.int64)
        if k == 0 or n == 0:
            return scores, rows
        fetch = min(k + 1, len(self))  # one more than asked: a near tie across the cut shows in it
        found_scores, found_ids = self.index.search(queries, fetch)
        for qi, q in enumerate(queries):
            top, exact = self._ranked(np.array([self.row[d] for d in found_ids[qi] if d is not None], np.int64), q)
            if fetch > k and found_scores[qi, k] >= found_scores[qi, k - 1] - NEAR_TIE:
                top, exact = self._ranked(np.union1d(top, self.rows_from(q, float(exact[k - 1]))), q)
            rows[qi], scores[qi] = top[:k], exact[:k]
        return scores, rows

    def _ranked(self, rows: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`rows` and their exact scores, best first, the earlier row first among equal scores."""
        exact = exact_scores(self.emb, rows, q)
        order = np.lexsort((rows, -exact))
        return rows[order], exact[order]

    def rows_from(self, q: np.ndarray, score: float) -> np.ndarray:
        """Pool rows near `score` whose exact score is at least it: with a list cut at `score`, every candidate
        that ties with its last one (one pass over the pool, so only for the queries that need it)."""
        near = np.flatnonzero(np.abs(self.emb @ q - score) <= NEAR_TIE)  # float32 pre-filter, then exact float64
        return near[exact_scores(self.emb, near, q) >= score]


def load_pool_view(embedder: Embedder, path: Path, root: Path, label: str, cands: dict[str, Candidate] | None = None,
                   check_images: bool = False, format_text: bool = False, **embed: Any) -> PoolView:
    """Read a pool file (or take its `cands`), embed it through the cache (`embed_items` keyword options)."""
    cands = load_pool(path, root, check_images=check_images) if cands is None else cands
    items = [c.to_item(root, formatted=format_text) for c in cands.values()]
    key = {**file_fingerprint(path), **({"format_text": True} if format_text else {})}
    return PoolView(cands, embed_items(embedder, items, label, key, **embed), root)


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
             ) -> Iterator[tuple[str, int, PoolView, list[Retrieved]]]:
    """For each query set of `split`: (set name, task id, pool, every query's top-`top` retrieval).

    Shared by mining and by the distillation teacher (which needs the same top-N lists). `max_per_set` keeps
    each set's first N queries (file order), for teachers whose per-candidate re-ranker cost must stay bounded.
    """
    root = Path(root).resolve()
    embed = {"cache_dir": cache_dir, "batch_size": batch_size}
    table = instruction_table(root) if instructions else {}
    shared = load_pool_view(embedder, global_pool_file(root, split), root, f"pool-global-{split}", **embed) \
        if pool == "global" else None
    for ref in find_eval_sets(root, split, tasks):
        # a real-layout training set's pool is its share of the global train pool (umr.data.mbeir_sets)
        view = shared or load_pool_view(embedder, ref.local_pool_file, root, ref.pool_label,
                                        load_set_pool(ref, check_images=False), **embed)
        es = load_eval_set(ref, view.row, check_images=False, strict=False)
        if max_per_set is not None:
            es.queries = es.queries[:max_per_set]
        cmod = TASKS[ref.task_id][1]
        instr = [query_instruction(q, table, cmod) if instructions else None for q in es.queries]
        items = [q.to_item(root, i) for q, i in zip(es.queries, instr)]
        key = {**file_fingerprint(ref.query_file), "instructions": instructions, "max_per_set": max_per_set}
        q_emb = embed_items(QuerySide(embedder), items, f"queries-{ref.name}-{split}", key, **embed)
        scores, rows = view.search(q_emb, top)
        out = []
        for qi, q in enumerate(es.queries):
            pos = [d for d in es.positives[q.qid] if d in view.row]
            pos_scores = exact_scores(view.emb, np.array([view.row[d] for d in pos], dtype=np.int64), q_emb[qi])
            out.append(Retrieved(q, instr[qi], rows[qi], scores[qi], dict(zip(pos, pos_scores.tolist()))))
        yield ref.name, ref.task_id, view, out
