"""FashionIQ composed image retrieval, R@10 / R@50 per category and their mean (the val protocol papers report).

Files in ``--data`` (as in the FashionIQ repository)::

    captions/cap.<category>.<split>.json       [{"candidate": "B003FGW7MK", "target": "B008BHCT58",
                                                 "captions": ["is solid black with no sleeves", "is black"]}, ...]
    image_splits/split.<category>.<split>.json ["B008BHCT58", "B003FGW7MK", ...]
    images/<asin>.png (or .jpg)

Categories: dress, shirt, toptee (those with a captions file, or ``opts.categories``). Default split: ``val``.
Query = the candidate (reference) image + the two relative captions as one text; corpus = the category's split
images, in the split file's order. The reference stays in the corpus, as in the common protocol
(``exclude_reference`` drops it). The captions are joined as ``opts.caption_join`` says:

- ``searle`` (default; SEARLE's and most zero-shot CIR code's validation): each caption stripped of ``.``, ``?``,
  ``,`` and spaces at both ends, then ``"<first> and <second>"``.
- ``clip4cir`` (CLIP4Cir's validation): the same, with the first caption passed through ``str.capitalize`` (its
  first letter upper-cased, **the rest lower-cased**), so ~5,000 val queries differ from ``searle`` in case.

Ties (``opts.ties``): equal scores rank by corpus order (the project's rule; CLIP4Cir's ``argsort`` leaves the
order of ties unspecified).

Rows: one per category with ``R@10``, ``R@50`` (target hit rate) and ``avg`` = their mean, then ``mean`` over the
categories. Item ids: a query is ``<category>:<line>``, an image its asin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from umr.errors import UmrError
from umr.eval.suites.composed import INSTRUCTION, target_ranks
from umr.eval.suites.metrics import recall_at_k
from umr.eval.suites.runner import (
    Row,
    SuiteOptions,
    SuiteResult,
    Timer,
    encode,
    find_file,
    json_records,
    limit,
    require,
)
from umr.items import Item
from umr.jsonl import FileLineError
from umr.models.base import Embedder

CATEGORIES = ("dress", "shirt", "toptee")
KS = (10, 50)
CAPTION_JOINS = ("searle", "clip4cir")
STRIP = ".?, "  # the characters both protocols strip from each end of a caption


def query_text(captions: list[str], join: str = "searle") -> str:
    """The two relative captions as one modification text, by the named protocol (see the module docstring)."""
    if join not in CAPTION_JOINS:
        raise UmrError(f"caption_join must be one of {CAPTION_JOINS}, got {join!r}")
    first, second = (c.strip(STRIP) for c in captions)
    return f"{first.capitalize() if join == 'clip4cir' else first} and {second}"


def _category(embedder: Embedder, data: Path, cat: str, split: str, opts: SuiteOptions, timer: Timer) -> Row:
    split_path = data / "image_splits" / f"split.{cat}.{split}.json"
    cap_path = data / "captions" / f"cap.{cat}.{split}.json"
    roots = [data / "images", data / "images" / cat, data]
    asins = []
    for line, asin in json_records(split_path):
        if not isinstance(asin, str):
            raise FileLineError(split_path, line, f"expected an image name (string), got {type(asin).__name__}")
        asins.append((asin, find_file([f"{asin}.png", f"{asin}.jpg", asin], roots, split_path, line,
                                      f"image {asin!r}")))
    col = {a: i for i, (a, _) in enumerate(asins)}
    queries, targets, refs = [], [], []
    for line, rec in limit(json_records(cap_path), opts):
        require(rec, {"candidate": str, "target": str, "captions": list}, cap_path, line, "caption record")
        what = f"candidate {rec['candidate']!r} → target {rec['target']!r}"
        caps = rec["captions"]
        if len(caps) != 2 or not all(isinstance(c, str) and c.strip(STRIP) for c in caps):
            raise FileLineError(cap_path, line, f"{what}: captions should be two non-empty strings")
        if rec["target"] not in col:
            raise FileLineError(cap_path, line, f"{what}: the target is not in {split_path.name}")
        ref = find_file([f"{rec['candidate']}.png", f"{rec['candidate']}.jpg"], roots, cap_path, line,
                        f"{what}: reference image")
        queries.append(Item(text=query_text(caps, opts.caption_join), image=str(ref), id=f"{cat}:{line}"))
        targets.append([col[rec["target"]]])
        refs.append([col[rec["candidate"]]] if rec["candidate"] in col else [])
    if not queries:
        raise FileLineError(cap_path, None, "no queries")
    with timer("embed_s"):
        cands = encode(embedder, [Item(image=str(p), id=a) for a, p in asins], opts)
        q = encode(embedder, queries, opts, INSTRUCTION, query=True)
    with timer("score_s"):
        ranks = target_ranks(q, cands, targets, drop=refs if opts.exclude_reference else None, ties=opts.ties)
    metrics = {f"R@{k}": v for k, v in recall_at_k(ranks, KS).items()}
    metrics["avg"] = float(np.mean(list(metrics.values())))
    return Row(cat, metrics, len(queries), len(asins))


def run(embedder: Embedder, data: Path, opts: SuiteOptions) -> SuiteResult:
    split = opts.split or "val"
    cats = opts.categories or [c for c in CATEGORIES if (data / "captions" / f"cap.{c}.{split}.json").is_file()]
    if not cats:
        raise FileNotFoundError(f"{data / 'captions'}: no cap.<category>.{split}.json for any of {CATEGORIES}")
    query_text(["a", "b"], opts.caption_join)  # an unknown protocol fails before any embedding
    timer = Timer()
    rows = [_category(embedder, data, c, split, opts, timer) for c in cats]
    mean = {k: float(np.mean([r.metrics[k] for r in rows])) for k in rows[0].metrics}
    rows.append(Row("mean", mean, sum(r.n_queries for r in rows), sum(r.n_candidates for r in rows)))
    note = "reference image excluded" if opts.exclude_reference else "reference image kept in the corpus"
    return SuiteResult(suite="fashioniq", data=str(data), rows=rows, timings=timer.done(),
                       notes=[note, f"captions joined as {opts.caption_join} does"])
