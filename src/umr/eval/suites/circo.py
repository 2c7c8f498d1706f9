"""CIRCO (Composed Image Retrieval on Common Objects in context), mAP@k with several ground truths.

Files in ``--data`` (as in the CIRCO repository)::

    annotations/<split>.json      [{"id": 0, "reference_img_id": 12345, "target_img_id": 67890,
                                    "relative_caption": "is held by a person", "shared_concept": "a dog",
                                    "gt_img_ids": [67890, 2468, ...]}, ...]
    COCO2017_unlabeled/annotations/image_info_unlabeled2017.json   {"images": [{"id": 12345,
                                                                    "file_name": "000000012345.jpg"}, ...]}
    COCO2017_unlabeled/unlabeled2017/<file_name>

The default split is ``val``. Query = the reference image + the relative caption; corpus = every image of the
image-info file, in its order (the reference stays in it, as in CIRCO's own evaluation and SEARLE's submissions;
``exclude_reference`` drops it).

Metrics (miccunifi/CIRCO ``src/evaluation.py``, k = 5, 10, 25, 50):

- ``mAP@k``: the mean over queries of AP@k = Σ_{i ≤ k, i-th result is a ground truth} Precision@i /
  min(#ground truths, k), over all of ``gt_img_ids``.
- ``R@k``: hit rate of ``target_img_id`` alone (the image the caption was written for; the other ground truths
  count as misses ahead of it), as the official script prints beside mAP.

Ties (``opts.ties``): equal scores rank by corpus order (the project's rule; CIRCO scores submitted lists, and
SEARLE's ``topk`` leaves the order of ties unspecified).

**Test split** (``test``; ground truths hidden, CIRCO's server scores it): no metrics; the result carries
``circo_test_submission.json`` = ``{"<query id>": [top-50 image ids], ...}`` for every query (the format of the
CIRCO README), which `umr eval-suite` writes beside results.json.

Item ids: a query is ``circo:<id>``, an image its numeric id as a string.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from umr.eval.suites.composed import INSTRUCTION, target_aps, target_ranks, top_columns
from umr.eval.suites.metrics import recall_at_k
from umr.eval.suites.runner import (
    Row,
    SuiteOptions,
    SuiteResult,
    Timer,
    encode,
    find_file,
    first_file,
    json_records,
    limit,
    paused_gc,
    require,
)
from umr.items import Item
from umr.jsonl import FileLineError
from umr.models.base import Embedder

KS = (5, 10, 25, 50)
SUBMIT_DEPTH = 50  # the server takes the top 50 of each query
SERVER = "https://circo.micc.unifi.it/"
INFO = "COCO2017_unlabeled/annotations/image_info_unlabeled2017.json"


def load_images(data: Path) -> dict[int, Path]:
    """COCO id → image file for every image of the image-info file; a missing file raises an error naming it."""
    path = first_file(data, [INFO, "image_info_unlabeled2017.json"], "CIRCO image-info file")
    roots = [data / "COCO2017_unlabeled" / "unlabeled2017", data / "unlabeled2017", data / "images", data]
    out: dict[int, Path] = {}
    with paused_gc():  # 123k records alive at once (see paused_gc)
        for line, rec in json_records(path, key="images"):
            require(rec, {"id": int, "file_name": str}, path, line, "image record")
            out[rec["id"]] = find_file([rec["file_name"]], roots, path, line, f"image id {rec['id']}")
    return out


def run(embedder: Embedder, data: Path, opts: SuiteOptions) -> SuiteResult:
    split = opts.split or "val"
    hidden = split.startswith("test")
    path = data / "annotations" / f"{split}.json"
    timer = Timer()
    images = load_images(data)
    ids = list(images)
    col = {i: c for c, i in enumerate(ids)}
    queries, gts, targets, refs, qids = [], [], [], [], []
    for line, rec in limit(json_records(path), opts):
        require(rec, {"id": int, "reference_img_id": int, "relative_caption": str}, path, line, "annotation")
        what = f"query id {rec['id']}"
        gt = [] if hidden else rec.get("gt_img_ids")
        if not hidden:
            if gt is None:
                raise FileLineError(path, line, f"{what}: no gt_img_ids (hidden ground truths? the test split "
                                    "is written as a submission file: --split test)")
            if not isinstance(gt, list) or not gt or not all(isinstance(g, int) for g in gt):
                raise FileLineError(path, line, f"{what}: gt_img_ids should be a non-empty list of image ids")
        target = rec.get("target_img_id", gt[0] if gt else None)  # the README: the target is the first gt
        for g in [rec["reference_img_id"], *gt, *([target] if target is not None else [])]:
            if g not in col:
                raise FileLineError(path, line, f"{what}: image id {g} is not in the image-info file")
        queries.append(Item(text=rec["relative_caption"], image=str(images[rec["reference_img_id"]]),
                            id=f"circo:{rec['id']}"))
        gts.append(sorted({col[g] for g in gt}))
        targets.append([col[target]] if target is not None else [])
        refs.append([col[rec["reference_img_id"]]])
        qids.append(rec["id"])
    if not queries:
        raise FileLineError(path, None, "no queries")
    exclude = bool(opts.exclude_reference)
    with timer("embed_s"):
        cands = encode(embedder, [Item(image=str(images[i]), id=str(i)) for i in ids], opts)
        q = encode(embedder, queries, opts, INSTRUCTION, query=True)
    note = "reference image excluded" if exclude else "reference image kept in the corpus (CIRCO's protocol)"
    if hidden:
        with timer("score_s"):
            top = top_columns(q, cands, SUBMIT_DEPTH, drop=refs if exclude else None)
        name = f"circo_{split}_submission.json"
        files = {name: {str(qid): [ids[c] for c in cols] for qid, cols in zip(qids, top)}}
        return SuiteResult(suite="circo", data=str(data), rows=[Row(f"circo {split}", {}, len(queries), len(ids))],
                           timings=timer.done(), submissions=files,
                           notes=[f"{split} ground truths are hidden: upload {name} to CIRCO's evaluation server "
                                  f"({SERVER})", note])
    with timer("score_s"):
        drop = refs if exclude else None
        aps = target_aps(q, cands, gts, KS, drop=drop, ties=opts.ties)
        ranks = target_ranks(q, cands, targets, drop=drop, ties=opts.ties)
    metrics = {f"mAP@{k}": float(np.mean(v)) for k, v in aps.items()}
    metrics.update({f"R@{k}": v for k, v in recall_at_k(ranks, KS).items()})
    return SuiteResult(suite="circo", data=str(data), rows=[Row(f"circo {split}", metrics, len(queries), len(ids))],
                       timings=timer.done(), notes=[note])
