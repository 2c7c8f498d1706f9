"""Training data: (query, positive, hard negatives) pairs from simple JSONL or M-BEIR files, and batching.

Pair JSONL, one object a line (each item is an Item object as in `umr embed` input, or a plain string = text):

    {"query": {"text": "a red circle", "instruction": "find the image"}, "positive": {"image": "img/1.png"},
     "negatives": [{"image": "img/7.png"}]}

M-BEIR training data: a query file (`pos_cand_list`, `neg_cand_list`) plus the pool those dids live in.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from umr.errors import UmrError
from umr.items import Item, ItemError


@dataclass
class Pair:
    query: Item
    positive: Item
    negatives: list[Item] = field(default_factory=list)


@dataclass
class Batch:
    queries: list[Item]
    positives: list[Item]
    negatives: list[list[Item]]  # [b][k], same k for every row (empty rows when k = 0)


def item_from_json(value: Any, root: Path | None, where: str) -> Item:
    """One item of a JSONL row: a string is a text item, an object goes through `Item.from_dict`.

    Relative image paths resolve against `root`; `where` ("file:line") names the row in the error raised for
    any other JSON type.
    """
    if isinstance(value, str):
        return Item(text=value)
    if isinstance(value, dict):
        return Item.from_dict(value, root=root)
    raise UmrError(f"{where}: expected an item object or a string, got {type(value).__name__}")


def read_pairs(path: str | Path, root: str | Path | None = None) -> list[Pair]:
    """Pairs from a JSONL file; relative paths resolve against `root` (default: the file's folder)."""
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    pairs: list[Pair] = []
    try:
        _read_pair_lines(path, base, pairs)
    except UnicodeDecodeError:  # decoding runs in blocks: find the bad byte's line in the raw file (error path)
        raw = path.read_bytes()
        at = _first_bad_byte(raw)
        line = raw.count(b"\n", 0, at) + 1
        raise UmrError(f"{path}:{line}: not UTF-8 text (byte {raw[at]:#04x}); save the "
                       "file as UTF-8") from None
    if not pairs:
        raise UmrError(f"{path}: no training pairs")
    return pairs


def _first_bad_byte(raw: bytes) -> int:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return 0


def _read_pair_lines(path: Path, base: Path, pairs: list[Pair]) -> None:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UmrError(f"{where}: not JSON ({exc.msg})") from exc
            if not isinstance(obj, dict) or "query" not in obj or "positive" not in obj:
                raise UmrError(f"{where}: a pair needs 'query' and 'positive' keys")
            try:
                negs = [item_from_json(n, base, where) for n in obj.get("negatives") or []]
                query, positive = (item_from_json(obj[k], base, where) for k in ("query", "positive"))
                pairs.append(Pair(query, positive, negs))
            except ItemError as exc:
                raise UmrError(f"{where}: {exc}") from exc


def write_pairs(path: str | Path, pairs: Sequence[Pair]) -> Path:
    """The inverse of read_pairs, for items whose images are paths (tests and data tools)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as fh:
        for p in pairs:
            row = {"query": p.query.to_dict(), "positive": p.positive.to_dict(),
                   "negatives": [n.to_dict() for n in p.negatives]}
            fh.write(json.dumps(row) + "\n")
    return path


def read_mbeir_pairs(query_file: str | Path, pool_file: str | Path, root: str | Path,
                     instruction: str | None = None, pool: dict[str, Any] | None = None) -> list[Pair]:
    """One pair per M-BEIR training query: its first positive, its listed negatives (dids in the pool)."""
    from umr.data.mbeir import read_pool, read_queries

    if pool is None:
        pool = {c.did: c for c in read_pool(pool_file, root=root, check_images=False)}
    pairs = []
    for q in read_queries(query_file, root=root, check_images=False):
        missing = [d for d in q.pos + q.neg if d not in pool]
        if missing or not q.pos:
            raise UmrError(f"{query_file}:{q.line}: query {q.qid} has "
                           + (f"dids not in the pool: {missing[:3]}" if missing else "no positive"))
        pairs.append(Pair(q.to_item(root, instruction), pool[q.pos[0]].to_item(root),
                          [pool[d].to_item(root) for d in q.neg]))
    return pairs


def read_mbeir_root_pairs(root: str | Path, split: str = "train", tasks: list[str] | None = None,
                          seed: int = 0, datasets: list[str] | None = None) -> list[Pair]:
    """Pairs from an M-BEIR data root's split: the real download (or a world, which has the same layout).

    With `query/union_train/mbeir_union_up_train.jsonl` (split "train") this is UniIR's training set: every line
    of the union file, whose up-sampling repeats small datasets' queries on purpose, with candidates from the
    global train pool. `datasets` (names: "mscoco") and `tasks` (set names "mscoco_task0", datasets, "task0" or
    "0") keep the lines both match, as UniIR's held-out experiments filter that file. Without a union file, the
    split's sets (`find_eval_sets`) are read with their own pools.

    UniIR draws an instruction and a positive at random each time it meets a line; umr draws them from
    (seed, qid, repeat n), so a run is reproducible and a repeated query still varies: the instruction comes from
    the TSV's prompts for (dataset, query modality, positive's modality), the positive is the query's n-th.
    Pairs are ordered by (task, dataset), then file order: the seeded epoch shuffle decides the batches.
    """
    from umr.data.mbeir import read_queries
    from umr.data.mbeir_sets import (
        dataset_ids,
        find_eval_sets,
        global_pool_file,
        instruction_table,
        load_eval_set,
        load_pool,
        load_set_pool,
        union_train_file,
    )

    root = Path(root)
    table = instruction_table(root)
    union = union_train_file(root)
    if split == "train" and union.is_file():
        pool = load_pool(global_pool_file(root, split), root, check_images=False)
        names = {dsid: name for name, dsid in dataset_ids(root).items()}  # the root's own names win
        rows = [(q, names.get(q.dataset_id, q.dataset_id)) for q in read_queries(union, root, check_images=False,
                                                                                 duplicates=True)]
        where = union
    else:
        rows, pool = [], {}
        for ref in find_eval_sets(root, split, tasks):
            set_pool = load_set_pool(ref, check_images=False)
            pool.update(set_pool)
            rows.extend((q, ref.dataset) for q in load_eval_set(ref, set_pool, check_images=False,
                                                                strict=False).queries)
        where = root / "query" / split
    pairs = _pairs_from_rows(rows, pool, root, table, seed, where, tasks, datasets)
    if not pairs:
        raise UmrError(f"{root}: no training queries under query/{split}"
                       + (f" match datasets={datasets} tasks={tasks}" if datasets or tasks else ""))
    return pairs


def _pairs_from_rows(rows: list[tuple[Any, str]], pool: dict[str, Any], root: Path, table: dict, seed: int,
                     where: Path, tasks: list[str] | None, datasets: list[str] | None) -> list[Pair]:
    """One pair per (query, dataset name) row that passes the filters; see read_mbeir_root_pairs."""
    from umr.data.mbeir import TASKS, task_id_for

    want_tasks = {t.strip().lower() for t in tasks or [] if str(t).strip()}
    want_sets = {d.strip().lower() for d in datasets or [] if str(d).strip()}
    seen: dict[str, int] = {}
    keyed = []
    for q, dataset in rows:
        missing = [d for d in q.pos + q.neg if d not in pool]
        if missing or not q.pos:
            raise UmrError(f"{where}:{q.line}: query {q.qid} has "
                           + (f"dids not in the pool: {missing[:3]}" if missing else "no positive"))
        task = q.task_id if q.task_id is not None else task_id_for(q.modality, pool[q.pos[0]].modality)
        if want_sets and dataset.lower() not in want_sets:
            continue
        if want_tasks and not {f"{dataset}_task{task}".lower(), dataset.lower(), f"task{task}", str(task)} \
                & want_tasks:
            continue
        n = seen[q.qid] = seen.get(q.qid, -1) + 1
        positive = pool[q.pos[n % len(q.pos)]]
        pair = Pair(q.to_item(root), positive.to_item(root), [pool[d].to_item(root) for d in q.neg])
        prompts = table.get((q.dataset_id, q.modality, positive.modality)) or \
            table.get((q.dataset_id, q.modality, TASKS[task][1]))
        if prompts:
            draw = random.Random(f"{seed}:{q.qid}" if n == 0 else f"{seed}:{q.qid}:{n}")
            pair.query = pair.query.with_instruction(prompts[draw.randrange(len(prompts))])
        keyed.append(((task, dataset), pair))
    keyed.sort(key=lambda kv: kv[0])  # stable: file order within a (task, dataset)
    return [pair for _, pair in keyed]


def task_key(pair: Pair) -> tuple[str, str, str]:
    """The (dataset, query modality, candidate modality) a pair belongs to: M-BEIR's unit of a task."""
    dataset = pair.query.id.split(":", 1)[0] if pair.query.id and ":" in pair.query.id else ""
    return dataset, pair.query.modality, pair.positive.modality


#: how a batch is drawn: "none" (one shuffled order) or the name of a key its pairs share (BATCH_KEYS)
BatchBy = Literal["none", "task", "query_modality"]
#: batch_by → the key a batch's pairs share
BATCH_KEYS: dict[str, Callable[[Pair], Any]] = {"task": task_key, "query_modality": lambda p: p.query.modality}
BATCH_BY: tuple[str, ...] = get_args(BatchBy)


def _batch_order(pairs: Sequence[Pair], batch_size: int, rng: random.Random, batch_by: str) -> list[list[int]]:
    """Row indices of each batch. "task": every batch from one task while a task has a full batch left, so the
    in-batch negatives share the query's modality and instruction and only content tells them apart; the
    remainders of all tasks are pooled into mixed batches. "query_modality": the same with every task of one
    query modality as the group, so a text query asking for an image meets the texts other text queries ask for
    (the confusion of a global pool) while its batch still shares its input kind. "none": one shuffled order."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    if batch_by == "none":
        groups = [order]
    elif batch_by in BATCH_KEYS:
        key = BATCH_KEYS[batch_by]
        by_key: dict[Any, list[int]] = {}
        for i in order:
            by_key.setdefault(key(pairs[i]), []).append(i)
        groups, rest = [], []
        for rows in by_key.values():
            cut = len(rows) - len(rows) % batch_size
            groups.append(rows[:cut])
            rest.extend(rows[cut:])
        groups.append(rest)
    else:
        raise UmrError(f"batch_by must be one of {BATCH_BY}, got {batch_by!r}")
    batches = [g[s:s + batch_size] for g in groups for s in range(0, len(g) - batch_size + 1, batch_size)]
    if batch_by != "none":  # "none" keeps the historical order (and RNG stream) bit for bit
        rng.shuffle(batches)
    return batches


def epoch_batches(pairs: Sequence[Pair], batch_size: int, num_negatives: int, seed: int,
                  epoch: int, batch_by: str = "none") -> list[Batch]:
    """Shuffled batches for one epoch, a pure function of (seed, epoch) so a resumed run sees the same order.

    The last incomplete batch is dropped (every step, and every rank, then has the same batch size). A pair with
    fewer than `num_negatives` hard negatives is topped up with positives of random other pairs. `batch_by`:
    see `_batch_order`.
    """
    if len(pairs) < batch_size:
        raise UmrError(f"{len(pairs)} training pairs is fewer than one batch of {batch_size}")
    rng = random.Random(seed * 100_003 + epoch)
    out = []
    for batch in _batch_order(pairs, batch_size, rng, batch_by):
        rows = [pairs[i] for i in batch]
        negs = []
        for i, row in zip(batch, rows):
            chosen = list(row.negatives[:num_negatives])
            while len(chosen) < num_negatives:
                j = rng.randrange(len(pairs))
                if j != i:
                    chosen.append(pairs[j].positive)
            negs.append(chosen)
        out.append(Batch([r.query for r in rows], [r.positive for r in rows], negs))
    return out
