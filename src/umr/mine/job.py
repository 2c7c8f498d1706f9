"""`mine`: per-query hard negatives for an M-BEIR-format training split, written as training pairs JSONL.

    summary = mine(embedder, "data/world", "runs/negatives.jsonl", pool="global",
                   opts=MineOptions(top=100, take=5, fn_ratio=0.95, modality_aware=True))

Each output line is a training pair that `umr.train.data.read_pairs` reads as-is (`data: negatives.jsonl` and
`num_negatives: 5` in a training config), plus what mining knew about it:

    {"qid": "9:12", "task_id": 0, "query": {...}, "positive": {...}, "negatives": [{...}, ...],
     "mined": [{"did": "9:77", "rank": 2, "score": 0.61, "modality": "image"}, ...],
     "positive_score": 0.58, "fn_dropped": 1}

The pair's positive is the query's first labelled positive (as `read_mbeir_pairs`), and `positive_score` is its
score, the one the false-negative filter compares with. Resumable: embeddings go through the eval cache
(`cache_dir`), and queries already in the output file are skipped (a torn last line is rewritten).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from umr.data.mbeir import TASKS, Query
from umr.data.mbeir import Candidate as PoolEntry
from umr.data.mbeir_sets import (
    find_eval_sets,
    global_pool_file,
    instruction_table,
    load_eval_set,
    load_pool,
    load_set_pool,
)
from umr.eval.baselines import QuerySide
from umr.eval.mbeir import EvalOptions, embed_items, file_fingerprint, query_instruction
from umr.mine.negatives import Candidate, MineOptions, random_negatives, select_negatives
from umr.models.base import Embedder


@dataclass
class MineSummary:
    queries: int = 0  # queries seen in the selected sets
    written: int = 0  # rows written by this run
    resumed: int = 0  # rows already in the output file, skipped
    fn_dropped: int = 0  # candidates removed by the false-negative filter (this run)
    negatives: int = 0  # negatives written (this run)
    wrong_modality: int = 0  # … of which have a modality other than the task's candidate modality
    per_set: dict[str, int] = field(default_factory=dict)

    @property
    def wrong_modality_share(self) -> float:
        return self.wrong_modality / self.negatives if self.negatives else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"queries": self.queries, "written": self.written, "resumed": self.resumed,
                "fn_dropped": self.fn_dropped, "negatives": self.negatives,
                "wrong_modality_share": round(self.wrong_modality_share, 4), "per_set": self.per_set}


@dataclass
class Retrieved:
    """One query's retrieval over a pool: the pool's rows in rank order and their scores."""

    query: Query
    instruction: str | None
    rows: np.ndarray  # [top] pool row indices, best first
    scores: np.ndarray  # [top] cosine scores
    positive_scores: dict[str, float]  # every in-pool positive's score


class PoolView:
    """A pool's entries, embeddings and flat inner-product index (pool-order ties broken by row)."""

    def __init__(self, entries: dict[str, PoolEntry], emb: np.ndarray, root: Path) -> None:
        self.entries = list(entries.values())
        self.dids = list(entries)
        self.row = {d: i for i, d in enumerate(self.dids)}
        self.modality = [c.modality for c in self.entries]
        self.emb, self.root = emb, root
        self.index = faiss.IndexFlatIP(emb.shape[1])
        self.index.add(emb)

    def item_dict(self, row: int) -> dict[str, Any]:
        return self.entries[row].to_item(self.root).to_dict()


def done_qids(out: Path) -> set[str]:
    """qids already in a JSONL output (one object with a "qid" a line), for resuming a mining or teacher job.

    A torn last line (a crash mid-write) and anything after it is cut off the file, so the rerun rewrites it.
    """
    if not out.is_file():
        return set()
    done, keep = set(), 0
    with out.open("rb") as fh:
        for line in fh:
            try:
                done.add(json.loads(line)["qid"])
            except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
                break
            keep += len(line)
    with out.open("r+b") as fh:
        fh.truncate(keep)
    return done


def retrieve(embedder: Embedder, root: str | Path, split: str = "train", pool: str = "global",
             tasks: list[str] | None = None, top: int = 100, cache_dir: str | Path | None = None,
             batch_size: int = 16, instructions: bool = True, max_per_set: int | None = None,
             ) -> Iterator[tuple[str, int, PoolView, list[Retrieved]]]:
    """For each query set of `split`: (set name, task id, pool, every query's top-`top` retrieval).

    Shared by mining and by the distillation teacher (which needs the same top-N lists). `max_per_set` keeps
    each set's first N queries (file order), for teachers whose per-candidate re-ranker cost must stay bounded.
    """
    root = Path(root).resolve()
    opts = EvalOptions(pool=pool, split=split, batch_size=batch_size, cache_dir=Path(cache_dir) if cache_dir else None)
    table = instruction_table(root) if instructions else {}

    def load(path: Path, label: str, entries: dict | None = None) -> PoolView:
        entries = load_pool(path, root, check_images=False) if entries is None else entries
        emb = embed_items(embedder, [c.to_item(root) for c in entries.values()], opts, label, file_fingerprint(path))
        return PoolView(entries, emb, root)

    shared = load(global_pool_file(root, split), f"pool-global-{split}") if pool == "global" else None
    for ref in find_eval_sets(root, split, tasks):
        # a real-layout training set's pool is its share of the global train pool (umr.data.mbeir_sets)
        view = shared or load(ref.local_pool_file, ref.pool_label, load_set_pool(ref, check_images=False))
        es = load_eval_set(ref, view.row, check_images=False, strict=False)
        if max_per_set is not None:
            es.queries = es.queries[:max_per_set]
        cmod = TASKS[ref.task_id][1]
        instr = [query_instruction(q, table, cmod) if instructions else None for q in es.queries]
        items = [q.to_item(root, i) for q, i in zip(es.queries, instr)]
        key = {**file_fingerprint(ref.query_file), "instructions": instructions, "max_per_set": max_per_set}
        q_emb = embed_items(QuerySide(embedder), items, opts, f"queries-{ref.name}-{split}", key)
        k = min(top, len(view.dids))
        scores, rows = view.index.search(q_emb, k)
        out = []
        for qi, q in enumerate(es.queries):
            pos = {d: float(view.emb[view.row[d]] @ q_emb[qi]) for d in es.positives[q.qid] if d in view.row}
            keep = rows[qi] >= 0
            out.append(Retrieved(q, instr[qi], rows[qi][keep], scores[qi][keep], pos))
        yield ref.name, ref.task_id, view, out


def mine(embedder: Embedder, root: str | Path, out: str | Path, pool: str = "global", split: str = "train",
         tasks: list[str] | None = None, opts: MineOptions | None = None, cache_dir: str | Path | None = None,
         batch_size: int = 16, instructions: bool = True, max_per_set: int | None = None) -> MineSummary:
    """Mine negatives for every query of `split` and append them to `out` (see the module docstring)."""
    opts = opts or MineOptions()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = done_qids(out)
    summary = MineSummary(resumed=len(done))
    rng = random.Random(opts.seed)
    with out.open("a", encoding="utf-8") as fh:
        for name, task_id, view, retrieved in retrieve(embedder, root, split, pool, tasks, opts.top, cache_dir,
                                                       batch_size, instructions, max_per_set):
            cmod = TASKS[task_id][1]
            summary.per_set[name] = 0
            for r in retrieved:
                summary.queries += 1
                q = r.query
                first = next((d for d in q.pos if d in view.row), None) or next(iter(r.positive_scores), None)
                if q.qid in done or first is None:
                    continue
                positives = set(r.positive_scores) | set(q.pos)
                if opts.strategy == "random":
                    negs, dropped = random_negatives(view.dids, view.modality, positives, opts.take, rng), 0
                else:
                    ranked = [Candidate(view.dids[row], i + 1, float(s), view.modality[row])
                              for i, (row, s) in enumerate(zip(r.rows, r.scores))]
                    sel = select_negatives(ranked, positives, r.positive_scores[first], cmod, opts)
                    negs, dropped = sel.negatives, sel.fn_dropped
                row = {"qid": q.qid, "task_id": task_id, "set": name,
                       "query": q.to_item(view.root, r.instruction).to_dict(),
                       "positive": view.item_dict(view.row[first]),
                       "negatives": [view.item_dict(view.row[c.did]) for c in negs],
                       "mined": [c.to_dict() for c in negs],
                       "positive_score": round(r.positive_scores[first], 6), "fn_dropped": dropped}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                summary.written += 1
                summary.per_set[name] += 1
                summary.fn_dropped += dropped
                summary.negatives += len(negs)
                summary.wrong_modality += sum(c.modality != cmod for c in negs)
    return summary
