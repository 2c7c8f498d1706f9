"""CIRR (Composed Image Retrieval on Real-life images), the official val protocol.

Files in ``--data`` (as in the CIRR repository)::

    captions/cap.rc2.<split>.json       [{"pairid": 12063, "reference": "dev-147-1-img1",
                                          "target_hard": "dev-83-0-img1", "caption": "...", "target_soft": {...},
                                          "img_set": {"id": 206, "members": ["dev-147-1-img1", ...]}}, ...]
    image_splits/split.rc2.<split>.json {"dev-0-0-img0": "./dev/1/dev-0-0-img0.png", ...}

Image paths in the split file are relative to ``<data>``, ``<data>/img_raw`` or ``<data>/images``. The default
split is ``val``.

Query = the reference image + the caption. Corpus = every image of the split file, in the split file's order.

- ``R@k`` (k = 1, 5, 10, 50): hit rate of ``target_hard`` over the whole corpus **with the reference removed**.
- ``Rs@k`` (k = 1, 2, 3): the same over the query's ``img_set.members`` only (reference removed; five remain).
- ``avg``: (R@5 + Rs@1) / 2, the number CIRR's leaderboard ranks by.

Ties (``opts.ties``): equal scores rank by corpus order (the project's rule; CLIP4Cir's ``argsort`` leaves the
order of ties unspecified).

**Test split** (``test1``; its targets are hidden, CIRR's server scores it): no metrics; the result carries the
two files the server takes (Cuberick-Orion/CIRR ``Test-split_server.md``)::

    cirr_test1_recall.json         {"version": "rc2", "metric": "recall", "<pairid>": [top-50 image names], ...}
    cirr_test1_recall_subset.json  {"version": "rc2", "metric": "recall_subset", "<pairid>": [top-3 names], ...}

with the reference removed from both lists and the subset list drawn from the query's ``img_set.members``.
`umr eval-suite` writes them beside results.json.

Item ids: a query is ``cirr:<pairid>``, an image its name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from umr.eval.suites.composed import INSTRUCTION, target_ranks, top_columns
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

KS = (1, 5, 10, 50)
SUBSET_KS = (1, 2, 3)
#: list lengths the test server takes (its files are capped at 5 MB)
SUBMIT_DEPTH, SUBMIT_SUBSET_DEPTH = 50, 3
SERVER = "http://cirr.cecs.anu.edu.au/"


def load_images(path: Path, data: Path) -> dict[str, Path]:
    """name → image file, from a split.rc2.<split>.json object; a missing file raises an error naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FileLineError(path, exc.lineno, f"malformed JSON ({exc.msg})") from exc
    if not isinstance(mapping, dict):
        raise FileLineError(path, 1, "expected a JSON object mapping image name → relative path")
    roots = [data, data / "img_raw", data / "images"]
    return {name: find_file([rel], roots, path, None, f"image {name!r}") for name, rel in mapping.items()}


def run(embedder: Embedder, data: Path, opts: SuiteOptions) -> SuiteResult:
    split = opts.split or "val"
    hidden = split.startswith("test")
    cap_path = data / "captions" / f"cap.rc2.{split}.json"
    timer = Timer()
    images = load_images(data / "image_splits" / f"split.rc2.{split}.json", data)
    names = list(images)
    col = {n: i for i, n in enumerate(names)}
    fields = {"pairid": int, "reference": str, "caption": str, "img_set": dict}
    if not hidden:
        fields["target_hard"] = str
    queries, targets, refs, members, pairids = [], [], [], [], []
    for line, rec in limit(json_records(cap_path), opts):
        require(rec, fields, cap_path, line, "caption record")
        what = f"pairid {rec['pairid']}"
        for role in ("reference", "target_hard"):
            if role in fields and rec[role] not in col:
                raise FileLineError(cap_path, line, f"{what}: {role} {rec[role]!r} is not in the split's images")
        group = rec["img_set"].get("members")
        if not isinstance(group, list) or not group:
            raise FileLineError(cap_path, line, f"{what}: img_set.members should be a non-empty list")
        unknown = [m for m in group if m not in col]
        if unknown:
            raise FileLineError(cap_path, line, f"{what}: img_set member {unknown[0]!r} is not in the split's images")
        queries.append(Item(text=rec["caption"], image=str(images[rec["reference"]]), id=f"cirr:{rec['pairid']}"))
        targets.append([col[rec["target_hard"]]] if not hidden else [])
        refs.append([col[rec["reference"]]])
        members.append([col[m] for m in group])
        pairids.append(rec["pairid"])
    if not queries:
        raise FileLineError(cap_path, None, "no queries")
    with timer("embed_s"):
        cands = encode(embedder, [Item(image=str(images[n]), id=n) for n in names], opts)
        q = encode(embedder, queries, opts, INSTRUCTION, query=True)
    if hidden:
        with timer("score_s"):
            files = submissions(q, cands, names, refs, members, pairids, split)
        return SuiteResult(suite="cirr", data=str(data), rows=[Row(f"cirr {split}", {}, len(queries), len(names))],
                           timings=timer.done(), submissions=files,
                           notes=[f"{split} targets are hidden: upload {' and '.join(files)} to CIRR's evaluation "
                                  f"server ({SERVER}), one file per metric", "reference image excluded"])
    with timer("score_s"):
        ranks = target_ranks(q, cands, targets, drop=refs, ties=opts.ties)
        subset = target_ranks(q, cands, targets, drop=refs, keep_only=members, ties=opts.ties)
    metrics = {f"R@{k}": v for k, v in recall_at_k(ranks, KS).items()}
    metrics.update({f"Rs@{k}": v for k, v in recall_at_k(subset, SUBSET_KS).items()})
    metrics["avg"] = (metrics["R@5"] + metrics["Rs@1"]) / 2
    return SuiteResult(suite="cirr", data=str(data), rows=[Row(f"cirr {split}", metrics, len(queries), len(names))],
                       timings=timer.done(), notes=["reference image excluded from every ranking"])


def submissions(q: np.ndarray, cands: np.ndarray, names: list[str], refs: list[list[int]],
                members: list[list[int]], pairids: list[int], split: str) -> dict[str, dict[str, Any]]:
    """The two JSON objects CIRR's test server takes: top-50 names per pairid, and top-3 within the image set."""
    top = top_columns(q, cands, SUBMIT_DEPTH, drop=refs)
    top_set = top_columns(q, cands, SUBMIT_SUBSET_DEPTH, drop=refs, keep_only=members)
    recall: dict[str, Any] = {"version": "rc2", "metric": "recall"}
    subset: dict[str, Any] = {"version": "rc2", "metric": "recall_subset"}
    for pairid, cols, set_cols in zip(pairids, top, top_set):
        recall[str(pairid)] = [names[c] for c in cols]
        subset[str(pairid)] = [names[c] for c in set_cols]
    return {f"cirr_{split}_recall.json": recall, f"cirr_{split}_recall_subset.json": subset}
