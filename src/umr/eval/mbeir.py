"""The M-BEIR evaluation protocol: embed queries and pools (cached, resumable), search, score (`umr.retrieval`).

    report = evaluate(embedder, "data/M-BEIR", EvalOptions(pool="global"))

Per eval set: hit-rate Recall@{1,5,10,20,50}, MRR@10, NDCG@10 and M-BEIR's headline number (R@10 for the
Fashion200K / FashionIQ sets and their world analogues, R@5 for the rest). In global-pool runs each set also gets
its modality bias: the share of its top-k results whose modality is not the one the task asks for.

Ties (the project-wide rule): among equal scores the candidate that comes earlier in the candidate pool ranks
higher, i.e. a stable sort on descending score. It is a fixed, documented order, not a retriever's: measured with
faiss 1.15 on CPU, flat inner-product search returns exactly tied candidates latest-first (flat L2 earliest-first),
and UniIR's GPU-sharded search documents no order; exact ties are rare with real embeddings.
`ties="pessimistic"` (`umr eval --ties pessimistic`) ranks every tied candidate above the positive instead, so a
model that cannot tell candidates apart gets no credit from the order the pool was written in; each set keeps
the other rule's metrics when they differ (`alt_metrics`).

Queries carry one instruction each from the data root's instructions TSV, chosen by a hash of the qid (M-BEIR
samples one at random; a hash keeps runs reproducible). `format_text` applies UniIR's text normalisation
(`umr.data.mbeir.format_text`) to queries, instructions and candidates for any model, as UniIR embeds them (the
lamra and u-marvel recipes already normalise inside the model).
Embeddings go through the resumable embedding store (`umr.index.embed_job`), keyed by model settings and the source
file, so a rerun or an interrupted run resumes. (UniIR stores its embeddings in fp16; umr keeps float32, which can
only break fewer ties: fp16 rounding makes nearly equal scores equal.)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from umr.data.mbeir import TASKS
from umr.data.mbeir_sets import (
    EvalSet,
    EvalSetRef,
    find_eval_sets,
    global_pool_file,
    instruction_table,
    load_eval_set,
)
from umr.data.pool_columns import PoolColumns
from umr.errors import UmrError
from umr.eval.metrics import Metrics
from umr.eval.options import POOLS, EvalOptions
from umr.eval.scoring import pool_order_ranks, score_set, search_depth
from umr.items import Item
from umr.models.base import Embedder
from umr.pool_view import PoolView
from umr.retrieval import embed_queries, load_pool_view
from umr.runtime.distributed import dist_info
from umr.runtime.memory import check_memory, search_memory

__all__ = ["MBEIR_16", "POOLS", "EvalOptions", "EvalReport", "SetResult", "evaluate", "headline_k",
           "pool_order_ranks"]

#: The 16 eval sets of M-BEIR, in the order of the UniIR paper's tables.
MBEIR_16 = ("visualnews_task0", "mscoco_task0", "fashion200k_task0", "webqa_task1", "edis_task2", "webqa_task2",
            "visualnews_task3", "mscoco_task3", "fashion200k_task3", "nights_task4", "oven_task6", "infoseek_task6",
            "fashioniq_task7", "cirr_task7", "oven_task8", "infoseek_task8")
#: M-BEIR reports R@10 for the fashion sets (their captions are ambiguous) and R@5 elsewhere.
HEADLINE_K = {"fashion200k": 10, "fashioniq": 10}


@dataclass
class SetResult:
    name: str
    dataset: str
    task_id: int
    pool: str
    n_pool: int
    metrics: Metrics
    headline_k: int
    wrong_modality: float | None = None  # global pool only: share of the top bias_k with the wrong modality
    wrong_modality_top1: float | None = None  # … and of the top-1 results alone
    alt_metrics: Metrics | None = None  # under the other tie rule, kept only when it changes a number

    @property
    def headline(self) -> float:
        return self.metrics.recall.get(self.headline_k, float("nan"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dataset": self.dataset, "task_id": self.task_id, "pool": self.pool,
                "n_pool": self.n_pool, "headline_k": self.headline_k, "headline": self.headline,
                "wrong_modality": self.wrong_modality, "wrong_modality_top1": self.wrong_modality_top1,
                **self.metrics.to_dict(),
                "other_ties": self.alt_metrics.to_dict() if self.alt_metrics is not None else None}

    @property
    def alt_headline(self) -> float | None:
        """The headline number under the other tie rule, when it differs."""
        return None if self.alt_metrics is None else self.alt_metrics.recall.get(self.headline_k, float("nan"))


@dataclass
class EvalReport:
    model: dict[str, Any]
    data: str
    options: dict[str, Any]
    results: list[SetResult]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def average(self) -> float:
        """Mean headline number over the evaluated sets."""
        return float(np.mean([r.headline for r in self.results])) if self.results else float("nan")

    @property
    def mbeir16_average(self) -> float | None:
        """M-BEIR's 16-set average, when every one of the 16 real sets was evaluated."""
        by_name = {r.name: r.headline for r in self.results}
        if not all(n in by_name for n in MBEIR_16):
            return None
        return float(np.mean([by_name[n] for n in MBEIR_16]))

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "options": self.options, "average": self.average,
                "mbeir16_average": self.mbeir16_average, "timings": self.timings,
                "results": [r.to_dict() for r in self.results]}


def headline_k(root: Path, dataset: str) -> int:
    """R@10 for the fashion sets (and world datasets that declare so in world.json), R@5 otherwise."""
    manifest = root / "world.json"
    if manifest.is_file():
        for spec in json.loads(manifest.read_text()).get("datasets", []):
            if spec.get("name") == dataset:
                return int(spec.get("headline_k", 5))
    return HEADLINE_K.get(dataset, 5)


def _embed_options(opts: EvalOptions) -> dict[str, Any]:
    """`umr.retrieval.embed_items`' keyword options from an eval run's."""
    return {"cache_dir": opts.cache_dir, "batch_size": opts.batch_size, "show_progress": opts.show_progress,
            "store_dtype": opts.store_dtype, "shard_size": opts.shard_size}


@dataclass
class _Set:
    """One eval set ready to score: its pool, queries, their items and vectors."""

    ref: EvalSetRef
    pool: PoolView
    es: EvalSet
    items: list[Item]
    q_emb: np.ndarray


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def evaluate(embedder: Embedder, data: str | Path, opts: EvalOptions | None = None,
             reranker: Any = None) -> EvalReport:
    """Run the protocol on every selected eval set of an M-BEIR-format data root (real M-BEIR or a world).

    With `reranker` (umr.rerank.Reranker) and opts.rerank = N, each query's top-N is re-ordered by
    cos + opts.fuse_weight · P(Yes).

    Order of work: every pool and every set's queries are embedded first (under torchrun every rank embeds its
    shards of each through the cache, `umr.retrieval`), then rank 0 alone searches and scores: in a global-pool
    run every set's queries go through one pass over the pool. The other ranks return a report with no results.
    """
    opts = opts or EvalOptions()
    if opts.pool not in POOLS:
        raise UmrError(f"pool must be one of {', '.join(POOLS)}, got {opts.pool!r}")
    root = Path(data)
    t_start = time.perf_counter()
    timings = {"embed_pool_s": 0.0, "embed_queries_s": 0.0, "search_s": 0.0}
    refs = find_eval_sets(root, opts.split, opts.tasks)
    table = instruction_table(root) if opts.instructions else {}
    device = opts.search_device or _default_device()
    n_queries = sum(_count_lines(r.query_file) for r in refs) if opts.check_memory else 0

    def build_pool(path: Path, label: str) -> PoolView:
        t0 = time.perf_counter()
        cols = PoolColumns.read(path, root, check_images=opts.check_images)
        if opts.check_memory:
            k = search_depth(opts, len(cols), reranker is not None) + 1
            plan = search_memory(len(cols), n_queries, embedder.dim, opts.store_dtype, k)
            check_memory(plan, f"searching {path.name}")
        view = load_pool_view(embedder, path, root, label, format_text=opts.format_text,
                              device=device, kernel=opts.search_kernel, columns=cols, **_embed_options(opts))
        timings["embed_pool_s"] += time.perf_counter() - t0
        return view

    union = build_pool(global_pool_file(root, opts.split), f"pool-global-{opts.split}") \
        if opts.pool != "local" or opts.local_from_global else None
    by_modality: dict[str, PoolView] = {}
    sets = []
    for ref in refs:
        if opts.pool == "global":
            pool = union
        elif opts.pool == "global-modality":
            cmod = TASKS[ref.task_id][1]
            pool = by_modality.setdefault(cmod, union.with_modality(cmod))
        elif union is not None:
            pool = union.sub_view(PoolColumns.read(ref.local_pool_file, root, check_images=opts.check_images),
                                  ref.local_pool_file)
        else:
            pool = build_pool(ref.local_pool_file, f"pool-{ref.local_pool_file.stem}")
        sets.append(_embed_queries(embedder, root, ref, pool, table, opts, timings))
    results = _score(sets, root, opts, timings, reranker) if dist_info().is_main else []
    timings["total_s"] = time.perf_counter() - t_start
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()}
    return EvalReport(model=embedder.describe(), data=str(root), options=options, results=results,
                      timings={k: round(v, 3) for k, v in timings.items()})


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _embed_queries(embedder: Embedder, root: Path, ref: EvalSetRef, pool: PoolView, table: dict,
                   opts: EvalOptions, timings: dict[str, float]) -> _Set:
    es = load_eval_set(ref, pool.row, check_images=opts.check_images, strict=opts.strict)
    t0 = time.perf_counter()
    qs = embed_queries(embedder, root, ref, es.queries, table, opts.instructions, opts.format_text,
                       **_embed_options(opts))
    timings["embed_queries_s"] += time.perf_counter() - t0
    return _Set(ref, pool, es, qs.items, np.asarray(qs.vectors, dtype=np.float32))


def _score(sets: list[_Set], root: Path, opts: EvalOptions, timings: dict[str, float],
           reranker: Any) -> list[SetResult]:
    t0 = time.perf_counter()
    found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if opts.pool == "global" and sets:  # one pass over the pool for every set's queries
        pool = sets[0].pool
        depth = search_depth(opts, len(pool), reranker is not None and opts.rerank > 0)
        from tqdm.auto import tqdm

        with tqdm(total=len(pool), desc="searching the pool", unit="cand", unit_scale=True,
                  disable=not opts.show_progress) as bar:  # with its ETA: the 5.6M pool takes minutes
            scores, rows = pool.search(np.concatenate([s.q_emb for s in sets]), depth, progress=bar.update)
        at = np.cumsum([0] + [len(s.q_emb) for s in sets])
        found = {i: (scores[at[i]:at[i + 1]], rows[at[i]:at[i + 1]]) for i in range(len(sets))}
    timings["search_s"] += time.perf_counter() - t0
    return [_score_one(s, root, opts, timings, reranker, found.get(i)) for i, s in enumerate(sets)]


def _score_one(s: _Set, root: Path, opts: EvalOptions, timings: dict[str, float], reranker: Any,
               found: tuple[np.ndarray, np.ndarray] | None) -> SetResult:
    t0 = time.perf_counter()
    pool, items, ref = s.pool, s.items, s.ref
    rerank_fn = prefetch = None
    if reranker is not None and opts.rerank > 0:
        def cands(rows: Any) -> list[Item]:  # read back from the pool file: one open for all the rows
            return [c.to_item(root, formatted=opts.format_text) for c in pool.candidates(rows)]

        def rerank_fn(qi: int, rows: np.ndarray) -> np.ndarray:
            return reranker.score(items[qi], cands(rows))

        if hasattr(reranker, "score_pairs"):
            # every query's top-N scored in one call: the re-ranker then batches pairs across queries (1600
            # queries × 5 candidates in the demo: 72 → 54 s); rerank_fn only looks its rows up
            scored: dict[tuple[int, int], float] = {}

            def prefetch(tops: list[np.ndarray]) -> None:
                keys = [(qi, int(r)) for qi, rows in enumerate(tops) for r in rows[:opts.rerank]]
                pairs = [(items[qi], c) for (qi, _), c in zip(keys, cands([r for _, r in keys]))]
                scored.update(zip(keys, reranker.score_pairs(pairs).tolist()))

            def rerank_fn(qi: int, rows: np.ndarray) -> np.ndarray:
                return np.array([scored[(qi, int(r))] for r in rows], dtype=np.float32)
    metrics, alt, bias = score_set(s.es, s.q_emb, pool, opts, rerank_fn, prefetch, found)
    timings["search_s"] += time.perf_counter() - t0
    return SetResult(name=ref.name, dataset=ref.dataset, task_id=ref.task_id, pool=opts.pool, n_pool=len(pool),
                     metrics=metrics, headline_k=headline_k(root, ref.dataset),
                     wrong_modality=bias[0] if bias else None, wrong_modality_top1=bias[1] if bias else None,
                     alt_metrics=alt)
