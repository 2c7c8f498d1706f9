"""`mine`: per-query hard negatives for an M-BEIR-format training split, written as training pairs JSONL.

    summary = mine(embedder, "data/world", "runs/negatives.jsonl", pool="global",
                   opts=MineOptions(top=100, take=5, fn_ratio=0.95, modality_aware=True))

Each output line is a training pair that `umr.train.data.read_pairs` reads as-is (`data: negatives.jsonl` and
`num_negatives: 5` in a training config), plus what mining knew about it:

    {"qid": "9:12", "task_id": 0, "query": {...}, "positive": {...}, "negatives": [{...}, ...],
     "mined": [{"did": "9:77", "rank": 2, "score": 0.61, "modality": "image"}, ...],
     "positive_score": 0.58, "fn_dropped": 1}

The pair's positive is the query's first labelled positive (as `read_mbeir_pairs`), and `positive_score` is its
score, the one the false-negative filter compares with. Retrieval is `umr.retrieval.retrieve` (each query's
top-N, ties in pool order). Under torchrun every rank embeds its shards; rank 0 alone searches and writes.
Resumable: embeddings go through the embedding cache (`cache_dir`), and queries
already in the output file are skipped (a torn last line is rewritten).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umr.data.mbeir import TASKS
from umr.mine.negatives import MineOptions, RankedCandidate, random_negatives, select_negatives
from umr.models.base import Embedder
from umr.retrieval import retrieve
from umr.runtime.distributed import barrier, dist_info


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


def _complete_lines(out: Path) -> tuple[set[str], int]:
    """qids of the leading complete lines of a JSONL output and their length in bytes (up to a torn line)."""
    done, keep = set(), 0
    with out.open("rb") as fh:
        for line in fh:
            try:
                done.add(json.loads(line)["qid"])
            except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
                break
            keep += len(line)
    return done, keep


def done_qids(out: Path) -> set[str]:
    """qids already in a JSONL output (one object with a "qid" a line), up to a torn line; reads only."""
    return _complete_lines(out)[0] if out.is_file() else set()


def resume_output(out: Path) -> set[str]:
    """Make a mining or teacher output ready to append to and return the qids it holds (`done_qids`).

    A torn last line (a crash mid-write) and anything after it is cut off the file, so the rerun rewrites it.
    """
    if not out.is_file():
        return set()
    done, keep = _complete_lines(out)
    with out.open("r+b") as fh:
        fh.truncate(keep)
    return done


def mine(embedder: Embedder, root: str | Path, out: str | Path, pool: str = "global", split: str = "train",
         tasks: list[str] | None = None, opts: MineOptions | None = None, cache_dir: str | Path | None = None,
         batch_size: int = 16, instructions: bool = True, max_per_set: int | None = None) -> MineSummary:
    """Mine negatives for every query of `split` and append them to `out` (see the module docstring)."""
    opts = opts or MineOptions()
    if not dist_info().is_main:  # the other ranks embed their shards of every pool and query set; rank 0 writes
        for _ in retrieve(embedder, root, split, pool, tasks, opts.top, cache_dir, batch_size, instructions,
                          max_per_set):
            pass
        barrier()
        return MineSummary()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = resume_output(out)
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
                    ranked = [RankedCandidate(str(view.dids[row]), i + 1, float(s), str(view.modality[row]))
                              for i, (row, s) in enumerate(zip(r.rows, r.scores))]
                    sel = select_negatives(ranked, positives, r.positive_scores[first], cmod, opts)
                    negs, dropped = sel.negatives, sel.fn_dropped
                positive, *negatives = view.item_dicts([view.row[d] for d in (first, *(c.did for c in negs))])
                row = {"qid": q.qid, "task_id": task_id, "set": name,
                       "query": q.to_item(view.root, r.instruction).to_dict(),
                       "positive": positive, "negatives": negatives,
                       "mined": [c.to_dict() for c in negs],
                       "positive_score": round(r.positive_scores[first], 6), "fn_dropped": dropped}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                summary.written += 1
                summary.per_set[name] += 1
                summary.fn_dropped += dropped
                summary.negatives += len(negs)
                summary.wrong_modality += sum(c.modality != cmod for c in negs)
    barrier()  # the file is whole before any rank goes on to train on it
    return summary
