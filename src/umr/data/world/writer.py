"""Build the whole world and write it in M-BEIR's layout (see umr.data.mbeir), plus two sidecar files:

val and test: one query file, qrels file and local pool per eval set, and the global (union) pool. train: the
real download's training layout, so one reader serves both: `query/train/mbeir_{dataset}_train.jsonl` (all the
dataset's tasks, `task_id` on each line) with its qrels, `query/union_train/mbeir_union_up_train.jsonl` and the
global train pool, and no local train pools. UniIR's union file up-samples its small datasets (WebQA to 100K
lines, EDIS, NIGHTS, FashionIQ and CIRR to 50K); every world dataset has the same number of queries per task
already, so the world's union file is the plain concatenation of its per-dataset files.

    world.json          seed, size, the datasets with the M-BEIR set each stands in for, headline K, counts
    world_meta.jsonl    hidden attributes and answer key of every qid and did ("kind" says which: M-BEIR's qids
                        and dids are separate namespaces, "8:31" can be both); the oracle reads it

Same seed and size → byte-identical files: one `random.Random(seed)` drives everything in a fixed order, JSON is
written with sorted keys, PNGs with fixed encoder settings.
"""

from __future__ import annotations

import json
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from umr.data.mbeir import Candidate, Query, write_instructions, write_jsonl, write_pool, write_qrels, write_queries
from umr.data.world.attributes import all_objects
from umr.data.world.instructions import instruction_rows
from umr.data.world.render import render, save_png
from umr.data.world.tasks import (
    Ctx,
    caption_sets,
    composed_set,
    edis_set,
    entity_image_sets,
    similar_image_set,
    wiki_sets,
)
from umr.errors import UmrError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    dsid: int
    display: str
    analogue: str  # the M-BEIR dataset it stands in for
    tasks: tuple[int, ...]
    headline_k: int = 5
    frame: tuple[int, int, int] | None = None  # border colour of its images: the dataset's look


# Frame colours stay clear of the object colours and backgrounds (attributes.py), so a border is never read as
# the object or its ground. MSCOCO, the everyday photos, keeps the plain look.
DATASETS = (
    DatasetSpec("shapenews", 0, "ShapeNews", "VisualNews", (0, 3), frame=(25, 35, 85)),
    DatasetSpec("shapefashion", 1, "ShapeFashion", "Fashion200K", (0, 3), headline_k=10, frame=(150, 95, 50)),
    DatasetSpec("shapewiki", 2, "ShapeWiki", "WebQA", (1, 2), frame=(95, 110, 30)),
    DatasetSpec("shapeedis", 3, "ShapeEDIS", "EDIS", (2,), frame=(120, 25, 45)),
    DatasetSpec("shapenights", 4, "ShapeNIGHTS", "NIGHTS", (4,), frame=(20, 105, 105)),
    DatasetSpec("shapeoven", 5, "ShapeOVEN", "OVEN", (6, 8), frame=(175, 165, 225)),
    DatasetSpec("shapeseek", 6, "ShapeSeek", "InfoSeek", (6, 8), frame=(160, 225, 185)),
    DatasetSpec("shapefashioniq", 7, "ShapeFashionIQ", "FashionIQ", (7,), headline_k=10, frame=(70, 90, 115)),
    DatasetSpec("shapecirr", 8, "ShapeCIRR", "CIRR", (7,), frame=(20, 70, 35)),
    DatasetSpec("shapecoco", 9, "ShapeCOCO", "MSCOCO", (0, 3)),
)


@dataclass(frozen=True)
class SizeSpec:
    """Queries and pool size per eval set, for each split."""

    queries: dict[str, int]
    pool: dict[str, int]


SIZES = {
    "tiny": SizeSpec({"train": 24, "val": 6, "test": 10}, {"train": 48, "val": 24, "test": 40}),
    "small": SizeSpec({"train": 400, "val": 40, "test": 100}, {"train": 800, "val": 160, "test": 400}),
    "medium": SizeSpec({"train": 600, "val": 60, "test": 200}, {"train": 1300, "val": 200, "test": 1300}),
    "large": SizeSpec({"train": 2400, "val": 200, "test": 500}, {"train": 2400, "val": 600, "test": 4000}),
}
SPLIT_SHARE = {"train": 0.5, "val": 0.1, "test": 0.4}  # of the 15,360 objects; disjoint


def _build_split(rng: random.Random, split: str, objects: list, size: SizeSpec, counters: dict, images: dict,
                 meta: list, names: set, looks: bool) -> dict[tuple[str, int], tuple[list[Query], list[Candidate]]]:
    nq, npool = size.queries[split], size.pool[split]
    sets: dict[tuple[str, int], tuple[list[Query], list[Candidate]]] = {}
    for spec in DATASETS:
        ctx = Ctx(random.Random(rng.random()), spec.name, spec.dsid, split, objects, counters, images, meta, names,
                  frame=spec.frame if looks else None)
        kind = spec.analogue
        if kind in ("VisualNews", "Fashion200K", "MSCOCO"):
            style = {"VisualNews": "news", "Fashion200K": "fashion", "MSCOCO": "coco"}[kind]
            built = caption_sets(ctx, nq, npool, style)
        elif kind == "WebQA":
            built = wiki_sets(ctx, nq, npool)
        elif kind == "EDIS":
            built = {2: edis_set(ctx, nq, npool)}
        elif kind == "NIGHTS":
            built = {4: similar_image_set(ctx, nq, npool)}
        elif kind in ("OVEN", "InfoSeek"):
            built = entity_image_sets(ctx, nq, npool, facts=kind == "InfoSeek")
        else:
            built = {7: composed_set(ctx, nq, npool, "fashioniq" if kind == "FashionIQ" else "cirr")}
        for task, pair in built.items():
            sets[(spec.name, task)] = pair
    return sets


def _write_train(out: Path, sets: dict[tuple[str, int], tuple[list[Query], list[Candidate]]]) -> None:
    """The training queries in the real download's layout: per dataset (tasks in id order), then their union."""
    union: list[Query] = []
    for spec in DATASETS:
        queries = [q for task in sorted(t for d, t in sets if d == spec.name) for q in sets[(spec.name, task)][0]]
        write_queries(out / "query" / "train" / f"mbeir_{spec.name}_train.jsonl", queries)
        write_qrels(out / "qrels" / "train" / f"mbeir_{spec.name}_train_qrels.txt", queries)
        union.extend(queries)
    write_queries(out / "query" / "union_train" / "mbeir_union_up_train.jsonl", union)


def _render_one(job: tuple[str, tuple, int, tuple[int, int, int] | None, int]) -> None:
    path, obj, variant, frame, size = job
    save_png(render(obj, variant, size, frame), path)


def build_world(out: str | Path, size: str | SizeSpec = "tiny", seed: int = 0, image_size: int = 112,
                workers: int | None = None, looks: bool = True) -> dict:
    """Generate the world into `out` (created; existing world files are overwritten). Returns world.json's dict.

    size: a name in SIZES, or a SizeSpec for a custom world (benchmarks).
    looks: draw each dataset's images in its own look (DatasetSpec.frame), as M-BEIR's datasets differ. False
    draws every image plainly, as before umr-world/2 (a base pretrained on that world does worse here:
    umr.models.pretrained, docs/quality.md §6).
    """
    if isinstance(size, SizeSpec):
        spec, size = size, "custom"
    elif size in SIZES:
        spec = SIZES[size]
    else:
        raise UmrError(f"unknown size {size!r}; use one of {list(SIZES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    objects = all_objects()
    rng.shuffle(objects)
    cut1 = int(SPLIT_SHARE["train"] * len(objects))
    cut2 = cut1 + int(SPLIT_SHARE["val"] * len(objects))
    split_objects = {"train": objects[:cut1], "val": objects[cut1:cut2], "test": objects[cut2:]}
    counters: dict[str, int] = {}
    images: dict[str, tuple] = {}
    meta: list[dict] = []
    names: set[str] = set()
    counts: dict[str, dict] = {}
    for split in ("train", "val", "test"):
        sets = _build_split(rng, split, split_objects[split], spec, counters, images, meta, names, looks)
        union: list[Candidate] = []
        counts[split] = {}
        for (dataset, task), (queries, pool) in sorted(sets.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            name = f"{dataset}_task{task}"
            union.extend(pool)
            counts[split][name] = {"queries": len(queries), "pool": len(pool)}
            if split == "train":
                continue  # written per dataset below
            write_queries(out / "query" / split / f"mbeir_{name}_{split}.jsonl", queries)
            write_qrels(out / "qrels" / split / f"mbeir_{name}_{split}_qrels.txt", queries)
            # test pools get M-BEIR's plain name; val ones are split-specific (as M-BEIR's MSCOCO)
            suffix = "" if split == "test" else f"_{split}"
            write_pool(out / "cand_pool" / "local" / f"mbeir_{name}{suffix}_cand_pool.jsonl", pool)
        if split == "train":
            _write_train(out, sets)
        union.sort(key=lambda c: tuple(int(x) for x in c.did.split(":")))
        write_pool(out / "cand_pool" / "global" / f"mbeir_union_{split}_cand_pool.jsonl", union)
        counts[split]["global_pool"] = len(union)
    write_instructions(out / "instructions" / "query_instructions.tsv", instruction_rows(DATASETS))
    write_jsonl(out / "world_meta.jsonl", meta)
    jobs = [(str(out / p), obj, v, frame, image_size) for p, (obj, v, frame) in sorted(images.items())]
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 2000:
        with ProcessPoolExecutor(workers) as pool_ex:
            list(pool_ex.map(_render_one, jobs, chunksize=256))
    else:
        for job in jobs:
            _render_one(job)
    manifest = {"format": "umr-world/2", "seed": seed, "size": size, "image_size": image_size, "looks": looks,
                "datasets": [asdict(d) for d in DATASETS], "counts": counts, "images": len(jobs)}
    (out / "world.json").write_text(json.dumps(manifest, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return manifest
