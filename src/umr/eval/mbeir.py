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
    load_pool,
)
from umr.errors import UmrError
from umr.eval.bias import wrong_modality_share
from umr.eval.metrics import DEFAULT_KS, Metrics, QueryResult, aggregate, positive_ranks
from umr.items import Item
from umr.models.base import Embedder
from umr.retrieval import (
    PoolView,
    QuerySide,
    embed_items,
    exact_scores,
    file_fingerprint,
    load_pool_view,
    query_instruction,
)

#: The 16 eval sets of M-BEIR, in the order of the UniIR paper's tables.
MBEIR_16 = ("visualnews_task0", "mscoco_task0", "fashion200k_task0", "webqa_task1", "edis_task2", "webqa_task2",
            "visualnews_task3", "mscoco_task3", "fashion200k_task3", "nights_task4", "oven_task6", "infoseek_task6",
            "fashioniq_task7", "cirr_task7", "oven_task8", "infoseek_task8")
#: M-BEIR reports R@10 for the fashion sets (their captions are ambiguous) and R@5 elsewhere.
HEADLINE_K = {"fashion200k": 10, "fashioniq": 10}


POOLS = ("local", "global", "global-modality")


@dataclass
class EvalOptions:
    """Settings of one evaluation run."""

    pool: str = "local"  # "local": each set against its own pool; "global": every set against the union pool;
    # "global-modality": the union pool's candidates of the task's modality only — what the global pool costs
    # by its size alone, with no room for modality bias (global-modality minus global = the bias' cost)
    split: str = "test"  # which query/qrels split to evaluate
    tasks: list[str] | None = None  # filter: set names, datasets, "task7" or "7"; None = all sets
    ks: tuple[int, ...] = DEFAULT_KS  # recall cut-offs
    instructions: bool = True  # prepend the TSV's task instruction to queries (every reference recipe does)
    batch_size: int = 16  # items per forward pass (tiny models on CPU: 16 beats 64, less padding)
    cache_dir: Path | None = None  # embedding cache root; None = no cache
    check_images: bool = True  # stat every image path while loading (catches a partial download early)
    strict: bool = True  # unknown same-dataset dids are errors (False: counted as absent positives)
    bias_k: int = 10  # top-k used by the modality-bias share
    show_progress: bool = False
    rerank: int = 0  # re-score each query's top-N with an MLLM re-ranker (0 = off); needs evaluate(reranker=…)
    fuse_weight: float = 1.0  # re-ranked score = cos + fuse_weight · P(Yes) (umr.rerank.fusion)
    # local pools: take their vectors from the split's global pool (their union) instead of embedding each one;
    # with a cache_dir shared with a global run, local pools then cost nothing to embed
    local_from_global: bool = False
    ties: str = "pool-order"  # "pool-order": the earlier pool candidate wins a tie; or "pessimistic"
    format_text: bool = False  # UniIR's text normalisation of queries and candidates (umr.data.mbeir.format_text)


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
    return {"cache_dir": opts.cache_dir, "batch_size": opts.batch_size, "show_progress": opts.show_progress}


def pool_order_ranks(top: np.ndarray, top_scores: np.ndarray, pos_rows: np.ndarray,
                     pos_scores: np.ndarray) -> list[int]:
    """1-based ranks of a query's positives under the pool-order rule: a stable sort on descending score.

    top / top_scores: the retrieved pool rows and their scores (any order); pos_rows / pos_scores: every positive
    in the pool. A positive that was not retrieved ranks after the list (exact for k ≤ len(list)), positives
    among themselves by (score, row).
    """
    order = np.lexsort((top, -top_scores))
    place = {int(r): i + 1 for i, r in enumerate(top[order])}
    ranks = sorted(place[int(r)] for r in pos_rows if int(r) in place)
    rest = sorted((-float(s), int(r)) for r, s in zip(pos_rows, pos_scores) if int(r) not in place)
    return ranks + [len(top) + 1 + j for j in range(len(rest))]


def _with_boundary_ties(pool: PoolView, q: np.ndarray, top: np.ndarray, top_scores: np.ndarray,
                        pos_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The retrieved list plus every pool row tied with its last score, when a positive has that score.

    The search's top-k already holds the tied candidates the pool-order rule puts first; the pessimistic rule, and
    a positive's rank among those cut off, need all of them. Rare: only such queries pay a pass over the pool."""
    if not len(top) or len(top) == len(pool) or not np.any(pos_scores == top_scores.min()):
        return top, top_scores
    rows = np.union1d(top, pool.rows_from(q, float(top_scores.min())))
    return rows, exact_scores(pool.emb, rows, q)


def _score_set(es: EvalSet, q_emb: np.ndarray, pool: PoolView, opts: EvalOptions, rerank_fn: Any = None,
               prefetch: Any = None) -> tuple[Metrics, Metrics | None, list[float] | None]:
    """Metrics under opts.ties, the other rule's metrics when they differ, the modality-bias shares (global).

    rerank_fn(query index, pool rows) → P(Yes) per row: re-order each query's top-N (opts.rerank) by fusion;
    prefetch(every query's retrieved rows), when given, is called once before, so rerank_fn can look scores up."""
    if opts.ties not in ("pool-order", "pessimistic"):
        raise UmrError(f"ties must be 'pool-order' or 'pessimistic', got {opts.ties!r}")
    k = min(max(*opts.ks, opts.bias_k, opts.rerank if rerank_fn else 0), len(pool))
    scores, idx = pool.search(q_emb, k)  # ordered by the tie rule: score, then pool order
    if prefetch is not None and rerank_fn is not None and opts.rerank > 0:
        prefetch(list(idx))
    results, others, tops = [], [], []
    for qi, q in enumerate(es.queries):
        top, top_scores = idx[qi], scores[qi]
        tops.append(top)
        pos = list(dict.fromkeys(es.positives[q.qid]))
        pos_rows = np.array([pool.row[d] for d in pos if d in pool.row], dtype=np.int64)
        if rerank_fn is not None and opts.rerank > 0:
            from umr.rerank.fusion import rerank_list

            top, _ = rerank_list(top, top_scores, lambda rows, qi=qi: rerank_fn(qi, rows), opts.rerank,
                                 opts.fuse_weight)
            tops[-1] = top
            # ranks are positions in the fused list; positives it missed rank after it (exact for k ≤ len(top))
            hit = [i + 1 for i, row in enumerate(top) if row in set(pos_rows.tolist())]
            ranks = hit + [len(top) + 1 + j for j in range(len(pos_rows) - len(hit))]
            results.append(QueryResult(q.qid, ranks, len(pos)))
            others.append(results[-1])
            continue
        pos_scores = exact_scores(pool.emb, pos_rows, q_emb[qi])
        top, top_scores = _with_boundary_ties(pool, q_emb[qi], top, top_scores, pos_scores)
        by_order = QueryResult(q.qid, pool_order_ranks(top, top_scores, pos_rows, pos_scores), len(pos))
        pessimistic = QueryResult(q.qid, positive_ranks(top_scores, np.isin(top, pos_rows), pos_scores), len(pos))
        chosen, other = (by_order, pessimistic) if opts.ties == "pool-order" else (pessimistic, by_order)
        results.append(chosen)
        others.append(other)
    metrics, alt = aggregate(results, opts.ks), aggregate(others, opts.ks)
    alt = None if alt == metrics else alt
    if opts.pool != "global":  # (global-modality holds the task's modality only: no bias to measure)
        return metrics, alt, None
    return metrics, alt, [wrong_modality_share(tops, pool.modality, es.cand_modality, k) for k in (opts.bias_k, 1)]


def evaluate(embedder: Embedder, data: str | Path, opts: EvalOptions | None = None,
             reranker: Any = None) -> EvalReport:
    """Run the protocol on every selected eval set of an M-BEIR-format data root (real M-BEIR or a world).

    With `reranker` (umr.rerank.Reranker) and opts.rerank = N, each query's top-N is re-ordered by
    cos + opts.fuse_weight · P(Yes).
    """
    opts = opts or EvalOptions()
    if opts.pool not in POOLS:
        raise UmrError(f"pool must be one of {', '.join(POOLS)}, got {opts.pool!r}")
    root = Path(data)
    t_start = time.perf_counter()
    timings = {"embed_pool_s": 0.0, "embed_queries_s": 0.0, "search_s": 0.0}
    refs = find_eval_sets(root, opts.split, opts.tasks)
    table = instruction_table(root) if opts.instructions else {}
    cand_side = embedder

    def build_pool(path: Path, label: str) -> PoolView:
        t0 = time.perf_counter()
        view = load_pool_view(cand_side, path, root, label, check_images=opts.check_images,
                              format_text=opts.format_text, **_embed_options(opts))
        timings["embed_pool_s"] += time.perf_counter() - t0
        return view

    union = build_pool(global_pool_file(root, opts.split), f"pool-global-{opts.split}") \
        if opts.pool != "local" or opts.local_from_global else None
    by_modality: dict[str, PoolView] = {}
    results = []
    for ref in refs:
        if opts.pool == "global":
            pool = union
        elif opts.pool == "global-modality":
            cmod = TASKS[ref.task_id][1]
            if cmod not in by_modality:
                keep = {d: c for d, c in zip(union.dids, union.cands) if c.modality == cmod}
                by_modality[cmod] = union.sub_view(keep, global_pool_file(root, opts.split))
            pool = by_modality[cmod]
        elif union is not None:
            pool = union.sub_view(load_pool(ref.local_pool_file, root, check_images=opts.check_images),
                                  ref.local_pool_file)
        else:
            pool = build_pool(ref.local_pool_file, f"pool-{ref.local_pool_file.stem}")
        results.append(_run_set(embedder, root, ref, pool, table, opts, timings, reranker))
    timings["total_s"] = time.perf_counter() - t_start
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()}
    return EvalReport(model=embedder.describe(), data=str(root), options=options, results=results,
                      timings={k: round(v, 3) for k, v in timings.items()})


def _run_set(embedder: Embedder, root: Path, ref: EvalSetRef, pool: PoolView, table: dict, opts: EvalOptions,
             timings: dict[str, float], reranker: Any = None) -> SetResult:
    es = load_eval_set(ref, pool.row, check_images=opts.check_images, strict=opts.strict)
    cmod = TASKS[ref.task_id][1]
    items = [q.to_item(root, query_instruction(q, table, cmod) if opts.instructions else None,
                       formatted=opts.format_text) for q in es.queries]
    t0 = time.perf_counter()
    key = {**file_fingerprint(ref.query_file), "instructions": opts.instructions,
           **({"format_text": True} if opts.format_text else {})}
    q_emb = embed_items(QuerySide(embedder), items, f"queries-{ref.name}-{ref.split}", key, **_embed_options(opts))
    timings["embed_queries_s"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    rerank_fn = prefetch = None
    if reranker is not None and opts.rerank > 0:
        def cand(r: int) -> Item:
            return pool.cands[r].to_item(root, formatted=opts.format_text)

        def rerank_fn(qi: int, rows: np.ndarray) -> np.ndarray:
            return reranker.score(items[qi], [cand(int(r)) for r in rows])

        if hasattr(reranker, "score_pairs"):
            # every query's top-N scored in one call: the re-ranker then batches pairs across queries (1600
            # queries × 5 candidates in the demo: 72 → 54 s); rerank_fn only looks its rows up
            scored: dict[tuple[int, int], float] = {}

            def prefetch(tops: list[np.ndarray]) -> None:
                keys = [(qi, int(r)) for qi, rows in enumerate(tops) for r in rows[:opts.rerank]]
                scored.update(zip(keys, reranker.score_pairs([(items[qi], cand(r)) for qi, r in keys]).tolist()))

            def rerank_fn(qi: int, rows: np.ndarray) -> np.ndarray:
                return np.array([scored[(qi, int(r))] for r in rows], dtype=np.float32)
    metrics, alt, bias = _score_set(es, q_emb, pool, opts, rerank_fn, prefetch)
    timings["search_s"] += time.perf_counter() - t0
    return SetResult(name=ref.name, dataset=ref.dataset, task_id=ref.task_id, pool=opts.pool, n_pool=len(pool),
                     metrics=metrics, headline_k=headline_k(root, ref.dataset),
                     wrong_modality=bias[0] if bias else None, wrong_modality_top1=bias[1] if bias else None,
                     alt_metrics=alt)
