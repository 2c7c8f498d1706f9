"""MMEB-style tasks (the Massive Multimodal Embedding Benchmark of VLM2Vec): every query ranks its own candidates.

Local format: one file per task in ``--data``, ``<Task>.jsonl`` (one object a line) or ``<Task>.json`` (an array),
with MMEB-eval's fields::

    {"qry_text": "<|image_1|>\\nRepresent the given image for classification", "qry_img_path": "ImageNet-1K/1.jpg",
     "tgt_text": ["tench", "goldfish", ...], "tgt_img_path": ["", "", ...]}

The first target is the correct one. ``tgt_text`` and ``tgt_img_path`` are parallel lists (a missing or shorter
``tgt_img_path`` means text-only candidates); an empty string means "no text" / "no image". Image paths are relative to
``<data>``, ``<data>/eval_images`` or ``<data>/images``. The ``<|image_1|>`` placeholder is removed; MMEB writes the
task instruction into ``qry_text`` itself, so queries are embedded as they are (no extra instruction).

Metric: ``P@1`` — the share of queries whose correct candidate scores strictly above all its others (a tie is a
miss). Rows: one per task, a mean per MMEB meta-task (Classification, VQA, Retrieval, Grounding) among the tasks
run, then ``mean`` over all tasks. Item ids: a query is ``<Task>:<line>``, a candidate ``<Task>|<image>|<text>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from umr.eval.suites.metrics import precision_at_1
from umr.eval.suites.runner import SCORE_DECIMALS, Row, SuiteOptions, SuiteResult, Timer, encode, find_file, limit
from umr.items import Item
from umr.jsonl import FileLineError, iter_jsonl
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


def _records(path: Path) -> list[tuple[int, dict]]:
    if path.suffix == ".jsonl":
        return list(iter_jsonl(path))
    from umr.eval.suites.runner import json_records

    return json_records(path)


def clean(text: object) -> str:
    """MMEB text without the image placeholder."""
    return str(text or "").replace(IMAGE_TOKEN, "").strip()


def _item(text: object, image: object, ident: str, data: Path, path: Path, line: int, what: str) -> Item:
    if text is not None and not isinstance(text, str) or image is not None and not isinstance(image, str):
        raise FileLineError(path, line, f"{what}: text and image path must be strings")
    text = clean(text)
    img = find_file([image], [data, data / "eval_images", data / "images"], path, line, f"{what} image") \
        if image else None
    if not text and img is None:
        raise FileLineError(path, line, f"{what}: neither text nor image")
    return Item(text=text or None, image=None if img is None else str(img), id=ident)


def load_task(path: Path, data: Path, opts: SuiteOptions) -> tuple[list[Item], list[list[Item]]]:
    """(queries, candidate lists) of one task file; the first candidate of each list is the correct one."""
    task = path.stem
    queries, cand_lists = [], []
    for line, rec in limit(_records(path), opts):
        if not isinstance(rec, dict) or not isinstance(rec.get("tgt_text"), list) or not rec["tgt_text"]:
            raise FileLineError(path, line, "query record needs a non-empty list 'tgt_text'")
        texts = rec["tgt_text"]
        imgs = rec.get("tgt_img_path") or []
        if not isinstance(imgs, list) or len(imgs) > len(texts):
            raise FileLineError(path, line, "'tgt_img_path' should be a list no longer than 'tgt_text'")
        imgs = imgs + [""] * (len(texts) - len(imgs))
        queries.append(_item(rec.get("qry_text"), rec.get("qry_img_path"), f"{task}:{line}", data, path, line,
                             "query"))
        cand_lists.append([_item(t, im, f"{task}|{im or ''}|{clean(t)}", data, path, line, f"target {j}")
                           for j, (t, im) in enumerate(zip(texts, imgs))])
    if not queries:
        raise FileLineError(path, None, "no queries")
    return queries, cand_lists


def find_tasks(data: Path, wanted: list[str] | None) -> list[Path]:
    files = {p.stem: p for p in sorted(data.glob("*.json*")) if p.suffix in (".json", ".jsonl")}
    if wanted:
        missing = [t for t in wanted if t not in files]
        if missing:
            raise FileNotFoundError(f"{data}: no {missing[0]}.jsonl or .json (tasks here: {sorted(files)})")
        return [files[t] for t in wanted]
    if not files:
        raise FileNotFoundError(f"{data}: no MMEB task files (<Task>.jsonl or <Task>.json)")
    return list(files.values())


def run(embedder: Embedder, data: Path, opts: SuiteOptions) -> SuiteResult:
    timer = Timer()
    rows = []
    for path in find_tasks(data, opts.categories):
        queries, cand_lists = load_task(path, data, opts)
        flat = [c for cands in cand_lists for c in cands]
        with timer("embed_s"):
            q = encode(embedder, queries, opts, None, query=True)
            c = encode(embedder, flat, opts)
        with timer("score_s"):
            bounds = np.cumsum([0] + [len(cands) for cands in cand_lists])
            per_query = [np.round(c[a:b].astype(np.float64) @ q[i].astype(np.float64), SCORE_DECIMALS)
                         for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
            p1 = precision_at_1(per_query)
        rows.append(Row(path.stem, {"P@1": float(p1.mean())}, len(queries), round(len(flat) / len(queries))))
    by_name = {r.name: r for r in rows}
    groups = []
    for meta, names in META_TASKS.items():
        present = [by_name[n] for n in names if n in by_name]
        if present and len(present) < len(rows):
            groups.append(Row(f"{meta} ({len(present)} tasks)", {"P@1": float(np.mean([r.metrics["P@1"]
                              for r in present]))}, sum(r.n_queries for r in present)))
    mean = Row(f"mean ({len(rows)} tasks)", {"P@1": float(np.mean([r.metrics["P@1"] for r in rows]))},
               sum(r.n_queries for r in rows))
    return SuiteResult(suite="mmeb", data=str(data), rows=rows + groups + [mean], timings=timer.done(),
                       notes=["instructions are part of qry_text (MMEB's format); P@1 counts ties as misses"])
