"""Flickr30K and MSCOCO image–text retrieval on Karpathy's split files.

Format (``dataset_flickr30k.json`` / ``dataset_coco.json`` in ``--data``)::

    {"dataset": "flickr30k",
     "images": [{"filename": "1000092795.jpg", "split": "test", "imgid": 0,
                 "filepath": "val2014",                       # COCO only
                 "sentences": [{"raw": "Two young guys ...", "sentid": 0, "imgid": 0, "tokens": [...]}, ...]}]}

Images are looked up as ``<data>/<filepath>/<filename>``, ``<data>/images/[<filepath>/]<filename>``,
``<data>/flickr30k-images/<filename>`` and ``<data>/<filename>``. Captions per image (``opts.captions_per_image``):
the first five by default, as VSE++'s ``evaluation.py`` and the papers following it (Flickr30K has five; a few
COCO images have six or seven, which this protocol drops); ``None`` keeps them all, as BLIP, ALBEF and
CLIP_benchmark do (slightly different COCO numbers: their extra captions are extra queries and extra positives).

Metrics (hit rate, in [0, 1]):

- ``t2i R@k``: each caption queries the images; a hit when its own image is in the top k.
- ``i2t R@k``: each image queries the captions; a hit when **any** of its captions is in the top k.
- ``RSUM``: the sum of the six recalls (as papers print it, on the 0–6 scale here).

COCO reports two rows: ``5k`` (the whole test split, 5,000 images) and ``1k`` (the mean over the test split cut
into ``opts.folds`` consecutive folds of images in file order — five folds of 1,000 on real COCO).
Ties (``opts.ties``): equal scores rank by file order (the project's rule; VSE++'s ``argsort(d)[::-1]`` leaves
the order of ties to numpy's unstable sort).
Item ids: an image is its filename, caption j of it is ``<filename>#<j>``. A row's n_queries counts the captions
(t2i queries) and n_candidates the images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from umr.errors import UmrError
from umr.eval.suites.metrics import first_hit_ranks, recall_at_k
from umr.eval.suites.runner import (
    Row,
    SuiteOptions,
    SuiteResult,
    Timer,
    encode,
    find_file,
    first_file,
    json_records,
    paused_gc,
    require,
    score_blocks,
)
from umr.items import Item
from umr.jsonl import FileLineError
from umr.models.base import Embedder

KS = (1, 5, 10)
CAPTIONS_PER_IMAGE = 5
T2I = "Find an image that matches the given caption."
I2T = "Find an image caption describing the given image."


def load(path: Path, data: Path, split: str, per_image: int | None = CAPTIONS_PER_IMAGE,
         ) -> tuple[list[Item], list[Item], np.ndarray]:
    """(images, captions, owner) of one split: owner[c] is the row of caption c's image.

    per_image: the first N captions of each image (None: all).
    """
    with paused_gc():  # the records of the whole file are alive until this returns (see paused_gc)
        return _load(path, data, split, per_image)


def _load(path: Path, data: Path, split: str, per_image: int | None) -> tuple[list[Item], list[Item], np.ndarray]:
    images, captions, owner = [], [], []
    seen: dict[str, int] = {}
    for line, rec in json_records(path, key="images"):
        require(rec, {"filename": str, "split": str, "sentences": list}, path, line, "image record")
        if rec["split"] != split:
            continue
        name = rec["filename"]
        what = f"image {name!r}"
        if name in seen:
            raise FileLineError(path, line, f"{what} appears twice in split {split!r} (first at line {seen[name]})")
        seen[name] = line
        sub = rec.get("filepath") or ""
        roots = [data / sub, data / "images" / sub, data / "images", data / "flickr30k-images", data]
        image = find_file([name], roots, path, line, what)
        texts = []
        for j, s in enumerate(rec["sentences"][:per_image]):
            raw = s.get("raw") if isinstance(s, dict) else None
            if not isinstance(raw, str) or not raw.strip():
                raise FileLineError(path, line, f"{what}: sentence {j} has no 'raw' text")
            texts.append(raw.strip())
        if not texts:
            raise FileLineError(path, line, f"{what}: no sentences")
        for j, text in enumerate(texts):
            captions.append(Item(text=text, id=f"{name}#{j}"))
            owner.append(len(images))
        images.append(Item(image=str(image), id=name))
    if not images:
        raise FileLineError(path, None, f"no images with split {split!r}")
    return images, captions, np.asarray(owner, dtype=np.int64)


def directional_metrics(img_q: np.ndarray, img_c: np.ndarray, cap_q: np.ndarray, cap_c: np.ndarray,
                        owner: np.ndarray, ties: str = "pool-order") -> dict[str, float]:
    """t2i and i2t R@1/5/10 and RSUM from embeddings (images/captions as queries _q and as candidates _c)."""
    t2i = np.concatenate([first_hit_ranks(s, owner[start:start + len(s), None], ties=ties)
                          for start, s in score_blocks(cap_q, img_c)]) if len(cap_q) else np.zeros(0)
    caps_of = [np.flatnonzero(owner == i) for i in range(len(img_q))]
    i2t = np.concatenate([first_hit_ranks(s, caps_of[start:start + len(s)], ties=ties)
                          for start, s in score_blocks(img_q, cap_c)]) if len(img_q) else np.zeros(0)
    out = {f"t2i R@{k}": v for k, v in recall_at_k(t2i, KS).items()}
    out.update({f"i2t R@{k}": v for k, v in recall_at_k(i2t, KS).items()})
    out["RSUM"] = float(sum(out.values()))
    return out


def run(embedder: Embedder, data: Path, opts: SuiteOptions, dataset: str = "flickr30k") -> SuiteResult:
    """Evaluate on Karpathy's `dataset` ("flickr30k" or "coco") test split (opts.split overrides)."""
    split = opts.split or "test"
    path = first_file(data, [f"dataset_{dataset}.json"], f"Karpathy split file for {dataset}")
    timer = Timer()
    if opts.captions_per_image is not None and opts.captions_per_image < 1:
        raise UmrError(f"captions_per_image must be at least 1 (None: all), got {opts.captions_per_image}")
    images, captions, owner = load(path, data, split, opts.captions_per_image)
    if opts.max_queries is not None:  # keep whole images: the first N images and their captions
        images = images[:opts.max_queries]
        keep = owner < len(images)
        captions, owner = [c for c, k in zip(captions, keep) if k], owner[keep]
    with timer("embed_s"):
        img_c = encode(embedder, images, opts)
        cap_c = encode(embedder, captions, opts)
        img_q = encode(embedder, images, opts, I2T, query=True) if opts.instructions else img_c
        cap_q = encode(embedder, captions, opts, T2I, query=True) if opts.instructions else cap_c
    with timer("score_s"):
        rows = [Row(f"{dataset} {split}" if dataset != "coco" else f"coco {_size(len(images))}",
                    directional_metrics(img_q, img_c, cap_q, cap_c, owner, opts.ties), len(captions), len(images))]
        if dataset == "coco" and opts.folds > 1 and len(images) >= opts.folds:
            bounds = np.linspace(0, len(images), opts.folds + 1).astype(int)
            per_fold = []
            for a, b in zip(bounds[:-1], bounds[1:]):
                sel = np.flatnonzero((owner >= a) & (owner < b))
                per_fold.append(directional_metrics(img_q[a:b], img_c[a:b], cap_q[sel], cap_c[sel], owner[sel] - a,
                                                    opts.ties))
            mean = {k: float(np.mean([m[k] for m in per_fold])) for k in per_fold[0]}
            size = int(bounds[1] - bounds[0])
            rows.append(Row(f"coco {_size(size)} ({opts.folds}-fold mean)", mean, len(captions) // opts.folds, size))
    return SuiteResult(suite=dataset, data=str(data), rows=rows, timings=timer.done(),
                       notes=[f"{len(images)} images, {len(captions)} captions ({split} split of {path.name}; "
                              + (f"the first {opts.captions_per_image} captions of each image, as VSE++)"
                                 if opts.captions_per_image else "all captions of each image, as BLIP/ALBEF)")])


def _size(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n else f"{n} img"


def run_flickr30k(embedder: Embedder, data: Path, opts: SuiteOptions) -> SuiteResult:
    return run(embedder, data, opts, "flickr30k")


def run_coco(embedder: Embedder, data: Path, opts: SuiteOptions) -> SuiteResult:
    return run(embedder, data, opts, "coco")
