"""MMEB (the Massive Multimodal Embedding Benchmark of VLM2Vec): every query ranks its own candidates.

Files in ``--data``, either as ``TIGER-Lab/MMEB-eval`` publishes them (see `umr.eval.suites.mmeb_files`)::

    <Task>/test-00000-of-00001.parquet    (one folder per task; every parquet shard in it is read, in name order)
    images.zip                            (images under <Task>/...; or unzipped into eval_images/ or the folder)

or one local file per task, ``<Task>.jsonl`` (one object a line) or ``<Task>.json`` (an array). Every record has
MMEB-eval's fields::

    {"qry_text": "<|image_1|>\nRepresent the given image for classification", "qry_img_path": "ImageNet-1K/1.jpg",
     "tgt_text": ["tench", "goldfish", ...], "tgt_img_path": ["", "", ...]}

The first target is the correct one. ``tgt_text`` and ``tgt_img_path`` are parallel lists (a missing or shorter
``tgt_img_path`` means text-only candidates); an empty string means "no text" / "no image". Image paths are relative to
``<data>``, ``<data>/eval_images``, ``<data>/images`` or ``images.zip``. The ``<|image_1|>`` placeholder is removed;
MMEB writes the task instruction into ``qry_text`` itself, so queries are embedded as they are (no extra
instruction). Errors name ``file:line`` (JSON/JSONL) or ``file.parquet:row`` (rows counted from 1).

Metric: ``P@1`` — the share of queries whose correct candidate ranks first among its own list (VLM2Vec's
``eval_utils.get_pred``: ``argmax`` of the scores == 0). Ties: the candidate earlier in the list wins (the
project's rule, and what ``argmax`` does), so a correct candidate tied with a duplicate of itself counts as a
hit; ``opts.ties = "pessimistic"`` counts it as a miss. Rows: one per task, a mean per MMEB meta-task
(Classification, VQA, Retrieval, Grounding) among the tasks run, then ``mean`` over all tasks. Item ids: a query
is ``<Task>:<line>``, a candidate ``<Task>|<image>|<text>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from umr.eval.suites.metrics import precision_at_1
from umr.eval.suites.mmeb_files import Images, find_tasks, images_of, task_records
from umr.eval.suites.runner import SCORE_DECIMALS, Row, SuiteOptions, SuiteResult, Timer, encode, limit
from umr.items import Item
from umr.jsonl import FileLineError
from umr.models.base import Embedder

IMAGE_TOKEN = "<|image_1|>"
META_TASKS = {
    "Classification": ("ImageNet-1K", "N24News", "HatefulMemes", "VOC2007", "SUN397", "Place365", "ImageNet-A",
                       "ImageNet-R", "ObjectNet", "Country211"),
    "VQA": ("OK-VQA", "A-OKVQA", "DocVQA", "InfographicsVQA", "ChartQA", "Visual7W", "ScienceQA", "VizWiz", "GQA",
            "TextVQA"),
    "Retrieval": ("VisDial", "CIRR", "VisualNews_t2i", "VisualNews_i2t", "MSCOCO_t2i", "MSCOCO_i2t", "NIGHTS",
                  "WebQA", "FashionIQ", "Wiki-SS-NQ", "OVEN", "EDIS"),
    "Grounding": ("MSCOCO", "RefCOCO", "RefCOCO-Matching", "Visual7W-Pointing"),
}


def clean(text: object) -> str:
    """MMEB text without the image placeholder."""
    return str(text or "").replace(IMAGE_TOKEN, "").strip()


def _item(text: object, image: object, ident: str, images: Images, path: Path, line: int, what: str) -> Item:
    if text is not None and not isinstance(text, str) or image is not None and not isinstance(image, str):
        raise FileLineError(path, line, f"{what}: text and image path must be strings")
    text = clean(text)
    img = images.find(image, path, line, f"{what} image") if image else None
    if not text and img is None:
        raise FileLineError(path, line, f"{what}: neither text nor image")
    return Item(text=text or None, image=None if img is None else str(img), id=ident)


def load_task(task: str, files: list[Path], images: Images, opts: SuiteOptions,
              ) -> tuple[list[Item], list[list[Item]]]:
    """(queries, candidate lists) of one task; the first candidate of each list is the correct one."""
    queries, cand_lists = [], []
    for path, line, rec in limit(list(task_records(files)), opts):
        if not isinstance(rec, dict) or not isinstance(rec.get("tgt_text"), list) or not rec["tgt_text"]:
            raise FileLineError(path, line, "query record needs a non-empty list 'tgt_text'")
        texts = rec["tgt_text"]
        imgs = rec.get("tgt_img_path") or []
        if not isinstance(imgs, list) or len(imgs) > len(texts):
            raise FileLineError(path, line, "'tgt_img_path' should be a list no longer than 'tgt_text'")
        imgs = imgs + [""] * (len(texts) - len(imgs))
        # ids keep the line (JSON/JSONL) or the row counted over the task's shards, unique within the task
        ident = f"{task}:{line if len(files) == 1 else len(queries) + 1}"
        queries.append(_item(rec.get("qry_text"), rec.get("qry_img_path"), ident, images, path, line, "query"))
        cand_lists.append([_item(t, im, f"{task}|{im or ''}|{clean(t)}", images, path, line, f"target {j}")
                           for j, (t, im) in enumerate(zip(texts, imgs))])
    if not queries:
        raise FileLineError(files[0], None, "no queries")
    return queries, cand_lists


def select_tasks(data: Path, wanted: list[str] | None) -> dict[str, list[Path]]:
    tasks = find_tasks(data)
    if wanted:
        missing = [t for t in wanted if t not in tasks]
        if missing:
            raise FileNotFoundError(f"{data}: no {missing[0]}/*.parquet, {missing[0]}.jsonl or .json "
                                    f"(tasks here: {sorted(tasks)})")
        return {t: tasks[t] for t in wanted}
    if not tasks:
        raise FileNotFoundError(f"{data}: no MMEB tasks (<Task>/*.parquet, <Task>.jsonl or <Task>.json)")
    return tasks


def run(embedder: Embedder, data: Path, opts: SuiteOptions) -> SuiteResult:
    timer = Timer()
    rows = []
    with images_of(data) as images:
        for task, files in select_tasks(data, opts.categories).items():
            queries, cand_lists = load_task(task, files, images, opts)
            flat = [c for cands in cand_lists for c in cands]
            with timer("embed_s"):
                q = encode(embedder, queries, opts, None, query=True)
                c = encode(embedder, flat, opts)
            with timer("score_s"):
                bounds = np.cumsum([0] + [len(cands) for cands in cand_lists])
                per_query = [np.round(c[a:b].astype(np.float64) @ q[i].astype(np.float64), SCORE_DECIMALS)
                             for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
                p1 = precision_at_1(per_query, ties=opts.ties)
            rows.append(Row(task, {"P@1": float(p1.mean())}, len(queries), round(len(flat) / len(queries))))
    by_name = {r.name: r for r in rows}
    groups = []
    for meta, names in META_TASKS.items():
        present = [by_name[n] for n in names if n in by_name]
        if present and len(present) < len(rows):
            groups.append(Row(f"{meta} ({len(present)} tasks)", {"P@1": float(np.mean([r.metrics["P@1"]
                              for r in present]))}, sum(r.n_queries for r in present)))
    mean = Row(f"mean ({len(rows)} tasks)", {"P@1": float(np.mean([r.metrics["P@1"] for r in rows]))},
               sum(r.n_queries for r in rows))
    tie_note = "a tie goes to the earlier candidate (VLM2Vec's argmax)" if opts.ties == "pool-order" \
        else "ties count as misses"
    return SuiteResult(suite="mmeb", data=str(data), rows=rows + groups + [mean], timings=timer.done(),
                       notes=[f"instructions are part of qry_text (MMEB's format); P@1: {tie_note}"])
