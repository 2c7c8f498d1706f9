"""CIRR (Composed Image Retrieval on Real-life images), the official val protocol.

Files in ``--data`` (as in the CIRR repository)::

    captions/cap.rc2.<split>.json       [{"pairid": 12063, "reference": "dev-147-1-img1",
                                          "target_hard": "dev-83-0-img1", "caption": "...", "target_soft": {...},
                                          "img_set": {"id": 206, "members": ["dev-147-1-img1", ...]}}, ...]
    image_splits/split.rc2.<split>.json {"dev-0-0-img0": "./dev/1/dev-0-0-img0.png", ...}

Image paths in the split file are relative to ``<data>``, ``<data>/img_raw`` or ``<data>/images``. The default
split is ``val`` (``test1`` targets are hidden; CIRR scores test submissions on its server).

Query = the reference image + the caption. Corpus = every image of the split file.

- ``R@k`` (k = 1, 5, 10, 50): hit rate of ``target_hard`` over the whole corpus **with the reference removed**.
- ``Rs@k`` (k = 1, 2, 3): the same over the query's ``img_set.members`` only (reference removed; five remain).
- ``avg``: (R@5 + Rs@1) / 2, the number CIRR's leaderboard ranks by.

Item ids: a query is ``cirr:<pairid>``, an image its name.
"""

from __future__ import annotations

import json
from pathlib import Path

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

KS = (1, 5, 10, 50)
SUBSET_KS = (1, 2, 3)


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
    if split.startswith("test"):
        raise ValueError(f"CIRR's {split} targets are hidden; evaluate split 'val' (test scores come from the "
                         "CIRR evaluation server)")
    cap_path = data / "captions" / f"cap.rc2.{split}.json"
    timer = Timer()
    images = load_images(data / "image_splits" / f"split.rc2.{split}.json", data)
    names = list(images)
    col = {n: i for i, n in enumerate(names)}
    queries, targets, refs, members = [], [], [], []
    for line, rec in limit(json_records(cap_path), opts):
        require(rec, {"pairid": int, "reference": str, "target_hard": str, "caption": str, "img_set": dict},
                cap_path, line, "caption record")
        what = f"pairid {rec['pairid']}"
        for role in ("reference", "target_hard"):
            if rec[role] not in col:
                raise FileLineError(cap_path, line, f"{what}: {role} {rec[role]!r} is not in the split's images")
        group = rec["img_set"].get("members")
        if not isinstance(group, list) or not group:
            raise FileLineError(cap_path, line, f"{what}: img_set.members should be a non-empty list")
        unknown = [m for m in group if m not in col]
        if unknown:
            raise FileLineError(cap_path, line, f"{what}: img_set member {unknown[0]!r} is not in the split's images")
        queries.append(Item(text=rec["caption"], image=str(images[rec["reference"]]), id=f"cirr:{rec['pairid']}"))
        targets.append([col[rec["target_hard"]]])
        refs.append([col[rec["reference"]]])
        members.append([col[m] for m in group])
    if not queries:
        raise FileLineError(cap_path, None, "no queries")
    with timer("embed_s"):
        cands = encode(embedder, [Item(image=str(images[n]), id=n) for n in names], opts)
        q = encode(embedder, queries, opts, INSTRUCTION, query=True)
    with timer("score_s"):
        ranks = target_ranks(q, cands, targets, drop=refs)
        subset = target_ranks(q, cands, targets, drop=refs, keep_only=members)
    metrics = {f"R@{k}": v for k, v in recall_at_k(ranks, KS).items()}
    metrics.update({f"Rs@{k}": v for k, v in recall_at_k(subset, SUBSET_KS).items()})
    metrics["avg"] = (metrics["R@5"] + metrics["Rs@1"]) / 2
    return SuiteResult(suite="cirr", data=str(data), rows=[Row(f"cirr {split}", metrics, len(queries), len(names))],
                       timings=timer.done(), notes=["reference image excluded from every ranking"])
