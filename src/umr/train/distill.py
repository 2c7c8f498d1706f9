"""Distillation stage (U-MARVEL): the embedder learns the fused retriever + re-ranker ranking of each query's top-N.

    build_teacher(retriever, "data/world", "runs/teacher.jsonl", reranker=Reranker("runs/reranker/final"))
    # then a stage of the training config:
    - {name: distill, type: distill, data: runs/teacher.jsonl}

Teacher scores for query q over its top-N candidates c_1..c_N (labelled positive kept in the list):
t_j = cos(q, c_j) + w · P(Yes | q, c_j). The student's scores are its own cosines s_j over the same N
candidates, and the loss is KL(softmax(t/τ) ‖ softmax(s/τ)) with τ detached — no in-batch negatives: each
query only sees its own list.

With `distill_hard_weight` λ > 0 the loss adds λ · cross-entropy of softmax(s/τ) against the labelled positive
(classic distillation's hard-label term): a weak teacher — a tiny re-ranker — then cannot pull the positive
down. λ = 0 is U-MARVEL's pure KL.

Teacher JSONL, one object a line: {"qid", "query": item, "candidates": [item, ...], "teacher": [float, ...],
"cos": [...], "p_yes": [...], "dids": [...], "positive": index of the labelled positive in the list}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from umr.errors import UmrError
from umr.items import Item
from umr.rerank.fusion import fuse
from umr.train.config import TrainConfig
from umr.train.data import Pair, item_from_json
from umr.train.trainer import Trainer


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
    """KL(softmax(teacher/τ) ‖ softmax(student/τ)), averaged over queries; τ gets no gradient.

    Inputs:

    | argument  | shape  | meaning                                                          |
    |-----------|--------|------------------------------------------------------------------|
    | `student` | [b, n] | the student's cosine of query i with each of its n candidates    |
    | `teacher` | [b, n] | the teacher's (fused) score of the same candidates, a constant   |
    | `tau`     | scalar | temperature of both softmaxes, detached                          |
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} scores must match")
    t = tau.detach() if isinstance(tau, torch.Tensor) else torch.tensor(float(tau))
    log_s = F.log_softmax(student.float() / t, dim=-1)
    log_t = F.log_softmax(teacher.detach().float().to(student.device) / t, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean")


def distill_loss(query: torch.Tensor, candidates: torch.Tensor, teacher: torch.Tensor,
                 tau: float | torch.Tensor, positive: torch.Tensor | None = None,
                 hard_weight: float = 0.0, in_batch: bool = False) -> torch.Tensor:
    """`distill_kl` on embeddings: query [b, d] and candidates [b, n, d] (any scale: normalised here).

    `positive` [b]: index of each query's labelled positive in its list (-100 = not in the list); with
    `hard_weight` λ > 0 the loss adds λ · cross-entropy(softmax(s/τ), positive). `in_batch`: that cross-entropy
    runs over every candidate of the batch (b·n, the other queries' lists as extra negatives) instead of the
    query's own list, so the stage keeps the global contrast the list-only KL does not see.
    """
    q = F.normalize(query.float(), dim=-1)
    c = F.normalize(candidates.float(), dim=-1)
    student = torch.einsum("bd,bnd->bn", q, c)
    loss = distill_kl(student, teacher, tau)
    if hard_weight and positive is not None and bool((positive >= 0).any()):
        t = tau.detach() if isinstance(tau, torch.Tensor) else torch.tensor(float(tau))
        target = positive.to(student.device)
        logits = student
        if in_batch:
            b, n = student.shape
            logits = q @ c.reshape(b * n, -1).T  # [b, b·n]: row i's own list sits at columns i·n … i·n + n − 1
            target = torch.where(target >= 0, target + torch.arange(b, device=target.device) * n, target)
        loss = loss + hard_weight * F.cross_entropy(logits / t, target, ignore_index=-100)
    return loss


@dataclass
class DistillRow:
    qid: str
    query: Item
    candidates: list[Item]
    teacher: list[float]
    positive: int | None = None  # index of the labelled positive in `candidates` (None: not recorded)
    cos: list[float] | None = None  # the student's cosines the list was retrieved with (None: not recorded)


@dataclass
class DistillBatch:
    queries: list[Item]
    candidates: list[list[Item]]  # [b][n]
    teacher: torch.Tensor  # [b, n]
    positive: torch.Tensor  # [b], -100 where the positive is not among the first n


def read_distill(path: str | Path) -> list[DistillRow]:
    """Rows of a teacher JSONL; relative image paths resolve against the file's folder."""
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            where = f"{path}:{lineno}"
            if not {"query", "candidates", "teacher"} <= set(obj) or len(obj["candidates"]) != len(obj["teacher"]):
                raise UmrError(f"{where}: a distillation row needs 'query', and 'candidates' and 'teacher' of "
                               "equal length (make the file with umr.train.distill.build_teacher)")
            rows.append(DistillRow(str(obj.get("qid", lineno)), item_from_json(obj["query"], path.parent, where),
                                   [item_from_json(c, path.parent, where) for c in obj["candidates"]],
                                   [float(x) for x in obj["teacher"]],
                                   None if obj.get("positive") is None else int(obj["positive"]),
                                   None if obj.get("cos") is None else [float(x) for x in obj["cos"]]))
    if not rows:
        raise UmrError(f"{path}: no distillation rows")
    return rows


def check_distill_config(config: TrainConfig, where: str = "distillation") -> None:
    """Refuse settings the distillation trainer cannot honour (before any model is loaded or stage trained)."""
    if config.data.batch_by != "none":
        # its batches are whole teacher lists drawn across the file; a teacher row records no task to group by
        raise UmrError(f"{where}: batch_by: {config.data.batch_by} does not apply to a distill stage (each query "
                       "is batched with its own teacher list, across tasks); set `batch_by: none` in this stage")


class DistillTrainer(Trainer):
    """The Trainer with the distillation loss and batches of (query, its N candidates, teacher scores)."""

    trains = "distill"

    def __init__(self, config: TrainConfig, embedder: Any = None, rows: list[DistillRow] | None = None) -> None:
        self.check_type(config)  # before the teacher file is read
        check_distill_config(config)
        rows = rows if rows is not None else read_distill(config.data.data)
        # Lists can differ in length (a small pool); all queries of a batch need the same n, so keep the top n.
        self.n = min(len(r.candidates) for r in rows)
        if self.n < 2:
            raise UmrError("distillation needs at least 2 candidates per query")
        self.rows = rows
        pairs = [Pair(r.query, r.candidates[0], r.candidates[1:self.n]) for r in rows]
        super().__init__(config, embedder=embedder, pairs=pairs)

    def epoch_batches(self, epoch: int) -> list[DistillBatch]:
        import random

        rng = random.Random(self.config.optim.seed * 100_003 + epoch)  # same rule as umr.train.data.epoch_batches
        order = list(range(len(self.rows)))
        rng.shuffle(order)
        b, n = self.config.optim.batch_size, self.n
        out = []
        for start in range(0, len(order) - b + 1, b):
            rows = [self.rows[i] for i in order[start:start + b]]
            pos = [r.positive if r.positive is not None and r.positive < n else -100 for r in rows]
            out.append(DistillBatch([r.query for r in rows], [r.candidates[:n] for r in rows],
                                    torch.tensor([r.teacher[:n] for r in rows], dtype=torch.float32),
                                    torch.tensor(pos, dtype=torch.long)))
        return out

    @property
    def tau(self) -> torch.Tensor:
        if self.config.loss.distill_temperature is not None:
            return torch.tensor(self.config.loss.distill_temperature)
        return self.loss_fn.tau.detach()

    def step_batch(self, batch: DistillBatch) -> float:
        teacher, tau = batch.teacher.to(self.embedder.device), self.tau

        def loss_fn(q: torch.Tensor, first: torch.Tensor, rest: torch.Tensor | None) -> torch.Tensor:
            cands = first[:, None] if rest is None else torch.cat([first[:, None], rest], dim=1)
            return distill_loss(q, cands, teacher, tau, batch.positive, self.config.loss.distill_hard_weight,
                                self.config.loss.distill_in_batch)

        return self.train_step(batch.queries, [c[0] for c in batch.candidates], [c[1:] for c in batch.candidates],
                               loss_fn=loss_fn)


def teacher_verdict(rows: list[DistillRow], alpha: float = 0.05) -> dict[str, Any]:
    """Is the teacher better than the student it would teach, on the teacher's own lists?

    Each row's top-1 by the teacher score and by the student's cosine (`DistillRow.cos`, the scores the list was
    retrieved with) is checked against the labelled positive. The test is McNemar's, exact and one-sided, on the
    rows where exactly one of them is right: `better` when the teacher wins significantly more of them (p ≤
    `alpha`). Distilling from a teacher that is not better can only teach the student its own ranking back,
    plus the teacher's noise (docs/quality.md §6: a tiny re-ranker whose P(Yes) barely varies within a list).
    """
    from scipy.stats import binomtest

    missing = next((r.qid for r in rows if r.cos is None), None)
    if missing is not None:
        raise UmrError(f"teacher row {missing}: no 'cos' scores to compare the teacher with (write the file with "
                       "umr.train.distill.build_teacher)")
    n = min(len(r.candidates) for r in rows)
    judged = [r for r in rows if r.positive is not None and r.positive < n]
    t_hit = [max(range(n), key=lambda j: r.teacher[j]) == r.positive for r in judged]
    s_hit = [max(range(n), key=lambda j: r.cos[j]) == r.positive for r in judged]
    teacher_only = sum(t and not s for t, s in zip(t_hit, s_hit, strict=True))
    student_only = sum(s and not t for t, s in zip(t_hit, s_hit, strict=True))
    discordant = teacher_only + student_only
    p = binomtest(teacher_only, discordant, 0.5, alternative="greater").pvalue if discordant else 1.0
    share = 100.0 / max(len(judged), 1)
    return {"lists": len(judged), "top": n, "teacher_r1": round(sum(t_hit) * share, 2),
            "student_r1": round(sum(s_hit) * share, 2), "teacher_only": teacher_only, "student_only": student_only,
            "p": round(float(p), 6), "alpha": alpha, "better": bool(p <= alpha)}


def teacher_file_verdict(path: str | Path, alpha: float = 0.05) -> dict[str, Any]:
    """`teacher_verdict` of a teacher JSONL written by `build_teacher` (its rows record the student's `cos`)."""
    return teacher_verdict(read_distill(path), alpha)


def build_teacher(retriever: Any, root: str | Path, out: str | Path, reranker: Any = None, weight: float = 1.0,
                  top: int = 50, pool: str = "local", split: str = "train", tasks: list[str] | None = None,
                  cache_dir: str | Path | None = None, batch_size: int = 16,
                  max_per_set: int | None = None, scale: float = 1.0) -> dict[str, Any]:
    """Write the teacher JSONL for `split`: each query's top-`top` by `retriever`, scored scale · (cos + w·P(Yes))
    (U-MARVEL halves the fused score, scale 0.5, so that it stays in [-1, 1] like a cosine).

    The query's first labelled positive replaces the last candidate when retrieval missed it, so every list holds
    the target the teacher should rank first. Without a reranker the teacher is the retriever's cosine alone.
    Resumable: qids already in `out` are skipped. `max_per_set` bounds the re-ranker's cost (top × queries).
    """
    from umr.mine.job import resume_output
    from umr.retrieval import retrieve
    from umr.runtime.distributed import barrier, dist_info

    if not dist_info().is_main:  # the other ranks embed their shards of every pool and query set; rank 0 writes
        for _ in retrieve(retriever, root, split, pool, tasks, top, cache_dir, batch_size, max_per_set=max_per_set):
            pass
        barrier()
        return {"written": 0, "resumed": 0, "positive_inserted": 0}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = resume_output(out)
    written = inserted = 0
    with out.open("a", encoding="utf-8") as fh:
        for _, _, view, retrieved in retrieve(retriever, root, split, pool, tasks, top, cache_dir, batch_size,
                                              max_per_set=max_per_set):
            for r in retrieved:
                if r.query.qid in done or not r.positive_scores:
                    continue
                rows = [int(x) for x in r.rows]
                cos = [float(x) for x in r.scores]
                first = next((d for d in r.query.pos if d in view.row), next(iter(r.positive_scores)))
                if view.row[first] not in rows:
                    rows[-1], cos[-1] = view.row[first], r.positive_scores[first]
                    inserted += 1
                query = r.query.to_item(view.root, r.instruction)
                cands = [c.to_item(view.root) for c in view.candidates(rows)]
                p_yes = [float(x) for x in reranker.score(query, cands)] if reranker is not None else [0.0] * len(rows)
                teacher = (fuse(cos, p_yes, weight) * scale).tolist()
                fh.write(json.dumps({"qid": r.query.qid, "query": query.to_dict(),
                                     "candidates": [c.to_dict() for c in cands],
                                     "dids": [str(view.dids[i]) for i in rows],
                                     "cos": [round(c, 6) for c in cos], "p_yes": [round(p, 6) for p in p_yes],
                                     "teacher": teacher, "positive": rows.index(view.row[first])}) + "\n")
                fh.flush()
                written += 1
    barrier()  # the file is whole before any rank goes on to train on it
    return {"written": written, "resumed": len(done), "positive_inserted": inserted}
