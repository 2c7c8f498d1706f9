"""Write the kept pairs as an M-BEIR data root that `umr train` reads like any other (the real download's
training layout, as the world writes it):

    OUT/query/train/mbeir_synth<kind>_train.jsonl                      queries (qid "<dsid>:<n>"), one dataset a kind
    OUT/query/union_train/mbeir_union_up_train.jsonl                   their union (what training reads)
    OUT/cand_pool/global/mbeir_union_train_cand_pool.jsonl             every candidate
    OUT/qrels/train/mbeir_synth<kind>_train_qrels.txt
    OUT/instructions/query_instructions.tsv                              the kinds' instructions
    OUT/images/…                                                         the images the files name (hard links)

Train on it alone (`data: OUT`) or mixed into another root (`data: data/world`, `mix_data: OUT`,
`mix_share: 0.3`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from umr.data.mbeir import Candidate, Query, write_instructions, write_pool, write_qrels, write_queries
from umr.synthesis.kinds import Kind


def place_image(src: Path, dst: Path) -> None:
    """Hard-link src to dst (a copy across file systems); an existing file of the same size is kept."""
    if dst.is_file() and dst.stat().st_size == src.stat().st_size:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    tmp.replace(dst)


def write_root(out: Path, split: str, base: int, sets: dict[Kind, tuple[list[Query], list[Candidate]]],
               images: dict[str, Path]) -> list[Path]:
    """Write one query file, local pool and qrels per kind, the union pool, instructions and images."""
    written = []
    union: list[Candidate] = []
    union_queries: list[Query] = []
    for kind, (queries, pool) in sets.items():
        if split == "train":  # the real download's training layout: per dataset, their union, the global pool
            name = kind.dataset
            queries = [q if q.task_id is not None else replace(q, task_id=kind.task_id) for q in queries]
            union_queries.extend(queries)
        else:
            name = f"{kind.dataset}_task{kind.task_id}"
            written.append(write_pool(out / "cand_pool" / "local" / f"mbeir_{name}_{split}_cand_pool.jsonl", pool))
        written.append(write_queries(out / "query" / split / f"mbeir_{name}_{split}.jsonl", queries))
        written.append(write_qrels(out / "qrels" / split / f"mbeir_{name}_{split}_qrels.txt", queries))
        union.extend(pool)
    if union_queries:
        written.append(write_queries(out / "query" / "union_train" / "mbeir_union_up_train.jsonl", union_queries))
    written.append(write_pool(out / "cand_pool" / "global" / f"mbeir_union_{split}_cand_pool.jsonl", union))
    rows = [(k.query_modality, k.cand_modality, f"Synth-{k.name}", k.dataset_id(base), list(k.instructions))
            for k in sets]
    written.append(write_instructions(out / "instructions" / "query_instructions.tsv", rows))
    for rel, src in sorted(images.items()):
        place_image(src, out / rel)
    return written
