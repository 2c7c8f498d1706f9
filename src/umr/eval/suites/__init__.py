"""Evaluation suites for the benchmarks the papers report beside M-BEIR, each on its public file format.

    from umr.eval.suites import run_suite, SuiteOptions
    result = run_suite("cirr", embedder, "data/cirr", SuiteOptions(batch_size=32))

| suite | module | metrics |
|---|---|---|
| flickr30k, coco | karpathy | t2i / i2t R@1/5/10, RSUM; COCO 5k and the 5-fold 1k mean |
| circo | circo | mAP@5/10/25/50 over several ground truths, R@5/10/25/50 of the target |
| cirr | cirr | R@1/5/10/50 (reference excluded), Rs@1/2/3 over the image set |
| fashioniq | fashioniq | R@10/50 per category (dress, shirt, toptee) and their mean |
| mmeb | mmeb | Precision@1 per task over its own candidates, meta-task and overall means |
| msrvtt | msrvtt | t2v / v2t R@1/5/10, median and mean rank |

Each module's docstring gives the file layout, the metric definitions and which official code each number
follows (docs/suites.md has them side by side). Ties: one rule everywhere (`SuiteOptions.ties`, see
`umr.eval.suites.metrics`). CIRR's test1 and CIRCO's test split have hidden answers: their results carry the
files the benchmarks' servers take (`SuiteResult.submissions`). A suite is `run(embedder, data, opts)` →
`SuiteResult`; adding one is a module plus one line in SUITES.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict
from pathlib import Path

from umr.errors import UmrError
from umr.eval.suites.metrics import check_ties
from umr.eval.suites.runner import Row, SuiteOptions, SuiteResult
from umr.models.base import Embedder

#: suite name → ("module:function", one-line description)
SUITES: dict[str, tuple[str, str]] = {
    "flickr30k": ("karpathy:run_flickr30k", "Flickr30K 1k test, text↔image R@1/5/10 (Karpathy split JSON)"),
    "coco": ("karpathy:run_coco", "MSCOCO 5k test and 5-fold 1k, text↔image R@1/5/10 (Karpathy split JSON)"),
    "circo": ("circo:run", "CIRCO val, composed retrieval mAP@5/10/25/50 with several ground truths (test: "
              "submission file)"),
    "cirr": ("cirr:run", "CIRR val, composed retrieval R@1/5/10/50 and subset Rs@1/2/3 (test1: submission files)"),
    "fashioniq": ("fashioniq:run", "FashionIQ val, composed retrieval R@10/50 per category and mean"),
    "mmeb": ("mmeb:run", "MMEB-style tasks, Precision@1 over each query's own candidates"),
    "msrvtt": ("msrvtt:run", "MSR-VTT 1k-A, text↔video R@1/5/10, median/mean rank"),
}

__all__ = ["SUITES", "Row", "SuiteOptions", "SuiteResult", "run_suite"]


def run_suite(name: str, embedder: Embedder, data: str | Path, opts: SuiteOptions | None = None) -> SuiteResult:
    """Run one suite on the data folder; the result carries the model's description and the options."""
    if name not in SUITES:
        raise UmrError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    data = Path(data)
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no such data folder")
    opts = opts or SuiteOptions()
    check_ties(opts.ties)  # a typo fails before any embedding
    module, func = SUITES[name][0].split(":")
    fn = getattr(importlib.import_module(f"umr.eval.suites.{module}"), func)
    result = fn(embedder, data, opts)
    result.model = embedder.describe()
    result.options = asdict(opts)
    return result
