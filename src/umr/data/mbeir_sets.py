"""Eval sets of an M-BEIR data root: find them, and load one with its pool and qrels, cross-checked.

An eval set is one query file, e.g. `query/test/mbeir_visualnews_task0_test.jsonl` (name "visualnews_task0"),
evaluated against its local pool or the global (union) pool. Positives come from the qrels file when there is
one (the M-BEIR protocol), else from each query's `pos_cand_list`.

Training data (split "train") comes in the real download's layout: one file per dataset holding all its tasks,
`query/train/mbeir_{dataset}_train.jsonl` (each line has its `task_id`), with every candidate in the global train
pool `cand_pool/global/mbeir_union_train_cand_pool.jsonl`. Such a file gives one set per task found in it; the
set's local pool is the global train pool's candidates of that dataset and of the task's candidate modality (the
real download has no local train pools; U-MARVEL's get_training_data_local_format.ipynb splits the global one
into tasks the same way, OVEN's and InfoSeek's sets sharing both datasets' candidates). A root with
per-task train files (`mbeir_{dataset}_task{N}_train.jsonl`, older umr worlds) still reads as before.

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
from umr.errors import UmrError

_QUERY_FILE = re.compile(r"^mbeir_(?P<dataset>.+)_task(?P<task>\d+)_(?P<split>train|val|test)\.jsonl$")
_DATASET_FILE = re.compile(r"^mbeir_(?P<dataset>.+)_train\.jsonl$")
_TASK_ID = re.compile(r'"task_id":\s*(\d+)')

#: Dataset ids of real M-BEIR (UniIR's preprocessing table), to name the datasets of the union training file.
MBEIR_DATASET_IDS = {"visualnews": "0", "fashion200k": "1", "webqa": "2", "edis": "3", "nights": "4", "oven": "5",
                     "infoseek": "6", "fashioniq": "7", "cirr": "8", "mscoco": "9"}


@dataclass(frozen=True)
class EvalSetRef:
    """Where one eval set lives; `name` is "{dataset}_task{N}" as in UniIR's configs."""

    root: Path
    dataset: str
    task_id: int
    split: str
    per_dataset: bool = False  # the real training layout: the query file holds every task of the dataset

    @property
    def name(self) -> str:
        return f"{self.dataset}_task{self.task_id}"

    @property
    def query_file(self) -> Path:
        stem = self.dataset if self.per_dataset else self.name
        return self.root / "query" / self.split / f"mbeir_{stem}_{self.split}.jsonl"

    @property
    def qrels_file(self) -> Path:
        stem = self.dataset if self.per_dataset else self.name
        return self.root / "qrels" / self.split / f"mbeir_{stem}_{self.split}_qrels.txt"

    @property
    def local_pool_file(self) -> Path:
        """Split-specific pool when present (M-BEIR's MSCOCO has one per split), else the task's pool (the plain
        name holds the test candidates); for a per-dataset training set without a split-specific pool, the global
        train pool (`load_set_pool` keeps the set's part)."""
        local = self.root / "cand_pool" / "local"
        specific = local / f"mbeir_{self.name}_{self.split}_cand_pool.jsonl"
        if specific.exists():
            return specific
        if self.per_dataset:
            return global_pool_file(self.root, self.split)
        return local / f"mbeir_{self.name}_cand_pool.jsonl"

    @property
    def pool_is_derived(self) -> bool:
        """True when the set's pool is its share of the global train pool rather than a file of its own."""
        return self.local_pool_file == global_pool_file(self.root, self.split)

    @property
    def pool_label(self) -> str:
        """A name for the set's pool that is unique in the root (embedding-cache folders)."""
        return f"pool-{self.name}-{self.split}" if self.pool_is_derived else f"pool-{self.local_pool_file.stem}"


def global_pool_file(root: str | Path, split: str = "test") -> Path:
    return Path(root) / "cand_pool" / "global" / f"mbeir_union_{split}_cand_pool.jsonl"


def instructions_file(root: str | Path) -> Path:
    return Path(root) / "instructions" / "query_instructions.tsv"


def eval_splits(root: str | Path) -> list[str]:
    """The splits of a root that can be evaluated: a query/<split>/ folder (positives from qrels/<split>/ when it is
    there, else from each query's pos_cand_list); the training download's query/union_train/ is not one."""
    root = Path(root)
    found = [p.name for p in (root / "query").glob("*") if p.is_dir() and p.name != "union_train"]
    return sorted(found, key=lambda s: ({"test": 0, "val": 1, "train": 2}.get(s, 3), s))


def find_eval_sets(root: str | Path, split: str = "test", names: list[str] | None = None) -> list[EvalSetRef]:
    """Eval sets under root/query/{split}, sorted by (task, name); `names` filters by name, dataset or task id.

    A filter entry matches "visualnews_task0" exactly, a dataset ("visualnews") or a task ("task0" / "0").
    """
    root = Path(root)
    qdir = root / "query" / split
    if not re.fullmatch(r"\w[\w-]*", split) or not qdir.is_dir():
        have = eval_splits(root)
        what = f"it has {', '.join(have)} (--split)" if have else "it has none: is it an M-BEIR data root?"
        raise UmrError(f"{root}: no split {split!r} with queries (query/{split}/); {what}")
    refs = []
    for path in sorted(qdir.glob("mbeir_*.jsonl")):
        m = _QUERY_FILE.match(path.name)
        if m and m["split"] == split:
            refs.append(EvalSetRef(root, m["dataset"], int(m["task"]), split))
        elif split == "train" and (d := _DATASET_FILE.match(path.name)):
            refs.extend(EvalSetRef(root, d["dataset"], t, split, per_dataset=True) for t in _file_tasks(path))
    if names:
        wanted = {n.strip().lower() for n in names if n.strip()}

        def keep(r: EvalSetRef) -> bool:
            return bool({r.name, r.dataset, f"task{r.task_id}", str(r.task_id)} & wanted)

        refs = [r for r in refs if keep(r)]
        if not refs:
            raise UmrError(f"no eval set under {qdir} matches {sorted(wanted)}")
    return sorted(refs, key=lambda r: (r.task_id, r.name))


def _file_tasks(path: Path) -> list[int]:
    """The task ids named in a per-dataset training file (a regex scan: real files hold ~100K lines)."""
    with path.open(encoding="utf-8") as fh:
        found = {int(m) for line in fh for m in _TASK_ID.findall(line)}
    if not found:
        raise MBEIRFormatError(path, 1, "a per-dataset training file needs a task_id on every line")
    return sorted(found)


def dataset_ids(root: str | Path) -> dict[str, str]:
    """Dataset name → id of a root's training data: from its per-dataset train files (a world's names), falling
    back to real M-BEIR's ids."""
    out = dict(MBEIR_DATASET_IDS)
    for path in sorted((Path(root) / "query" / "train").glob("mbeir_*_train.jsonl")):
        m = _DATASET_FILE.match(path.name)
        if m and not _QUERY_FILE.match(path.name):
            with path.open(encoding="utf-8") as fh:
                first = next((line for line in fh if line.strip()), "")
            qid = re.search(r'"qid":\s*"([^"]+)"', first)
            if qid:
                out[m["dataset"]] = dataset_prefix(qid.group(1))
    return out


_SHARED_TRAIN_POOLS = {"oven": ("oven", "infoseek"), "infoseek": ("oven", "infoseek")}


def union_train_file(root: str | Path) -> Path:
    """UniIR's training queries: every dataset's train file, small datasets up-sampled, shuffled."""
    return Path(root) / "query" / "union_train" / "mbeir_union_up_train.jsonl"


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
    if ref.per_dataset:  # the file holds every task of the dataset: keep this set's lines
        queries = [q for q in read_queries(ref.query_file, root=ref.root, check_images=check_images)
                   if q.task_id == ref.task_id]
    else:
        queries = read_queries(ref.query_file, root=ref.root, check_images=check_images, task_id=ref.task_id)
    if ref.qrels_file.exists():
        qrels = read_qrels(ref.qrels_file)
        qids = {q.qid for q in queries}
        for qid in qrels.relevant:
            if qid not in qids and not ref.per_dataset:
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


_LAST_POOL: dict[tuple, dict[str, Candidate]] = {}


def load_set_pool(ref: EvalSetRef, check_images: bool = True) -> dict[str, Candidate]:
    """The candidates a set is searched against: its local pool file, or for a per-dataset training set without
    one, the global train pool's candidates of its dataset and of its task's candidate modality (file order).

    The global train pool is read once for all the sets of a root (the last one read is kept)."""
    if not ref.pool_is_derived:
        return load_pool(ref.local_pool_file, ref.root, check_images)
    path = ref.local_pool_file
    key = (str(path.resolve()), path.stat().st_mtime_ns, check_images)
    if key not in _LAST_POOL:
        _LAST_POOL.clear()
        _LAST_POOL[key] = load_pool(path, ref.root, check_images)
    ids = dataset_ids(ref.root)
    # OVEN and InfoSeek list each other's candidates as positives: U-MARVEL gives their sets both datasets' share
    wanted = {ids[d] for d in _SHARED_TRAIN_POOLS.get(ref.dataset, (ref.dataset,)) if d in ids}
    cmod = TASKS[ref.task_id][1]
    return {d: c for d, c in _LAST_POOL[key].items() if dataset_prefix(d) in wanted and c.modality == cmod}


def instruction_table(root: str | Path) -> dict[tuple[str, str, str], list[str]]:
    """The instruction prompts, or {} when the root has no instructions file."""
    path = instructions_file(root)
    return read_instructions(path) if path.exists() else {}
