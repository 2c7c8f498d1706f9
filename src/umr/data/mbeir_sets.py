"""Eval sets of an M-BEIR data root: find them, and load one with its pool and qrels, cross-checked.

An eval set is one query file, e.g. `query/test/mbeir_visualnews_task0_test.jsonl` (name "visualnews_task0"),
evaluated against its local pool or the global (union) pool. Positives come from the qrels file when there is
one (the M-BEIR protocol), else from each query's `pos_cand_list`.

Unknown ids: a qrels line or positive list naming a did that is not in the pool is an error naming the file
and line — except a did from another dataset (M-BEIR lists OVEN and InfoSeek positives across both datasets),
which is kept as a positive *absent from the pool*: it counts against recall and is reported, never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from umr.data.mbeir import (
    TASKS,
    Candidate,
    MBEIRFormatError,
    Query,
    dataset_prefix,
    read_instructions,
    read_pool,
    read_qrels,
    read_queries,
)

_QUERY_FILE = re.compile(r"^mbeir_(?P<dataset>.+)_task(?P<task>\d+)_(?P<split>train|val|test)\.jsonl$")


@dataclass(frozen=True)
class EvalSetRef:
    """Where one eval set lives; `name` is "{dataset}_task{N}" as in UniIR's configs."""

    root: Path
    dataset: str
    task_id: int
    split: str

    @property
    def name(self) -> str:
        return f"{self.dataset}_task{self.task_id}"

    @property
    def query_file(self) -> Path:
        return self.root / "query" / self.split / f"mbeir_{self.name}_{self.split}.jsonl"

    @property
    def qrels_file(self) -> Path:
        return self.root / "qrels" / self.split / f"mbeir_{self.name}_{self.split}_qrels.txt"

    @property
    def local_pool_file(self) -> Path:
        """Split-specific pool when present (M-BEIR's MSCOCO has one per split), else the task's pool."""
        local = self.root / "cand_pool" / "local"
        specific = local / f"mbeir_{self.name}_{self.split}_cand_pool.jsonl"
        return specific if specific.exists() else local / f"mbeir_{self.name}_cand_pool.jsonl"


def global_pool_file(root: str | Path, split: str = "test") -> Path:
    return Path(root) / "cand_pool" / "global" / f"mbeir_union_{split}_cand_pool.jsonl"


def instructions_file(root: str | Path) -> Path:
    return Path(root) / "instructions" / "query_instructions.tsv"


def find_eval_sets(root: str | Path, split: str = "test", names: list[str] | None = None) -> list[EvalSetRef]:
    """Eval sets under root/query/{split}, sorted by (task, name); `names` filters by name, dataset or task id.

    A filter entry matches "visualnews_task0" exactly, a dataset ("visualnews") or a task ("task0" / "0").
    """
    root = Path(root)
    qdir = root / "query" / split
    if not qdir.is_dir():
        raise FileNotFoundError(f"{qdir}: no query folder; is {root} an M-BEIR data root?")
    refs = []
    for path in sorted(qdir.glob("mbeir_*_task*_*.jsonl")):
        m = _QUERY_FILE.match(path.name)
        if m and m["split"] == split:
            refs.append(EvalSetRef(root, m["dataset"], int(m["task"]), split))
    if names:
        wanted = {n.strip().lower() for n in names if n.strip()}

        def keep(r: EvalSetRef) -> bool:
            return bool({r.name, r.dataset, f"task{r.task_id}", str(r.task_id)} & wanted)

        refs = [r for r in refs if keep(r)]
        if not refs:
            raise ValueError(f"no eval set under {qdir} matches {sorted(wanted)}")
    return sorted(refs, key=lambda r: (r.task_id, r.name))


@dataclass
class EvalSet:
    """Queries with their positives, resolved against one pool."""

    ref: EvalSetRef
    queries: list[Query]
    positives: dict[str, list[str]]
    #: positives of each query that the pool does not contain (other-dataset dids), reported by the metrics
    absent: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cand_modality(self) -> str:
        return TASKS[self.ref.task_id][1]


def load_eval_set(ref: EvalSetRef, pool_dids: set[str] | dict[str, Candidate], check_images: bool = True,
                  strict: bool = True) -> EvalSet:
    """Read the queries (and qrels) of `ref`, checking every positive against the pool's dids.

    strict=False turns unknown same-dataset dids into absent positives instead of errors (for partial copies).
    """
    queries = read_queries(ref.query_file, root=ref.root, check_images=check_images, task_id=ref.task_id)
    if ref.qrels_file.exists():
        qrels = read_qrels(ref.qrels_file)
        qids = {q.qid for q in queries}
        for qid in qrels.relevant:
            if qid not in qids:
                line = min(n for (q, _), n in qrels.line_of.items() if q == qid)
                raise MBEIRFormatError(ref.qrels_file, line, f"unknown qid {qid!r} (not in {ref.query_file.name})")
        positives = {q.qid: list(qrels.relevant.get(q.qid, [])) for q in queries}

        def where(qid: str, did: str) -> tuple[Path, int]:
            return ref.qrels_file, qrels.line_of[(qid, did)]
    else:
        positives = {q.qid: list(q.pos) for q in queries}
        line_of = {q.qid: q.line for q in queries}

        def where(qid: str, did: str) -> tuple[Path, int]:
            return ref.query_file, line_of[qid]

    absent: dict[str, list[str]] = {}
    for q in queries:
        if not positives[q.qid]:
            path, line = ref.query_file, q.line
            raise MBEIRFormatError(path, line, f"{q.qid}: no positive candidate (qrels or pos_cand_list)")
        for did in positives[q.qid]:
            if did in pool_dids:
                continue
            if strict and dataset_prefix(did) == q.dataset_id:
                path, line = where(q.qid, did)
                raise MBEIRFormatError(path, line, f"{q.qid}: unknown did {did!r} (not in the candidate pool)")
            absent.setdefault(q.qid, []).append(did)
    return EvalSet(ref=ref, queries=queries, positives=positives, absent=absent)


def load_pool(path: str | Path, root: str | Path, check_images: bool = True) -> dict[str, Candidate]:
    """A pool as {did: Candidate}, in file order."""
    return {c.did: c for c in read_pool(path, root=root, check_images=check_images)}


def instruction_table(root: str | Path) -> dict[tuple[str, str, str], list[str]]:
    """The instruction prompts, or {} when the root has no instructions file."""
    path = instructions_file(root)
    return read_instructions(path) if path.exists() else {}
