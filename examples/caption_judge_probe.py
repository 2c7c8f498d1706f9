"""Issue 31 probe: does a tiny judge pretrained as a captioner tell a positive from the embedder's near-misses?

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/caption_judge_probe.py --steps 4000 \
        [--drop-image 0.1] [--save runs/judge-plateau/judge] [--out runs/judge-plateau]
    ... caption_judge_probe.py --start tiny:judge@64x2+pre          # score the shipped judge as it is

Real MLLM judges were captioners before they judged. A new judge is umr.train.caption_judge's (its start and
settings, changed by the flags): the 64x2 tiny Qwen2-VL captions the pretraining world's image-caption pairs. A
judge given as `--start` is scored as it is.

It then scores the near-miss lists of validation worlds 2 and 3 (the positive and the embedder's 9 best negatives,
judge_plateau_probe's lists) with the judge's score (umr.rerank.likelihood: log P(text | image side) − log P(text)):
- per direction (text → image, image → text): R@1 of 10 and AUC of the positive against the 9, beside the
  embedder's R@1 on the same lists;
- over all 150 lists (every task; a pair with no caption scores 0): the embedder's top 5 re-ranked by
  cos + w · score, R@1 for each w of --weights.

One JSON line per run goes to OUT/caption-judge.jsonl; docs/quality.md §11 has the table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from judge_plateau_probe import embedder, finish, val_lists  # sibling probes (run from examples/)
from judge_probe import mined, world

from umr.mine.negatives import MineOptions
from umr.rerank.likelihood import caption_of
from umr.rerank.prompted import Reranker
from umr.train.caption_judge import JUDGE, caption_rows, judge_start, train_judge
from umr.train.data import Pair, read_pairs


def direction(p: Pair) -> str | None:
    """text->image or image->text for a list whose pairs the judge scores both ways alike, else None."""
    if caption_of(p.query, p.positive) is None:
        return None
    return "text->image" if p.query.image is None else "image->text"


def list_metrics(scores: list[np.ndarray], cosines: list[np.ndarray]) -> dict[str, float]:
    r1 = [s[0] > s[1:].max() for s in scores]
    auc = [(s[0] > s[1:]).mean() + 0.5 * (s[0] == s[1:]).mean() for s in scores]
    return {"r1_of_10": round(100 * float(np.mean(r1)), 1), "auc": round(float(np.mean(auc)), 3),
            "embedder_r1": round(100 * float(np.mean([c[0] > c[1:].max() for c in cosines])), 1), "n": len(scores)}


def reranked_first(cos: np.ndarray, score: np.ndarray, w: float, k: int = 5) -> int:
    """The list position that comes first once the embedder's top k are re-ordered by cos + w · score."""
    top = np.argsort(-cos)[:k]
    return int(top[np.argmax(cos[top] + w * score[top])])


def evaluate(rr: Reranker, out: Path, seeds: list[int], weights: list[float]) -> dict[str, Any]:
    emb, result = embedder(), {}
    for seed in seeds:
        lists = read_pairs(mined(out, f"val{seed}-hard", world(out, seed), "val", MineOptions(top=10, take=9)))
        for name in ("text->image", "image->text"):
            picked = [p for p in lists if direction(p) == name]
            scores = [rr.score(p.query, [p.positive, *p.negatives[:9]]) for p in picked]
            cosines = [(emb.encode_document([p.positive, *p.negatives[:9]]) @ emb.encode_query([p.query]).T).ravel()
                       for p in picked]
            result[f"world{seed} {name}"] = list_metrics(scores, cosines)
        pairs, cosines = val_lists(out, seed, 150, False)
        scores = [rr.score(p.query, [p.positive, *p.negatives[:9]]) for p in pairs]
        fused = {}
        for w in weights:
            hits = [reranked_first(c, s, w) == 0 for c, s in zip(cosines, scores)]
            fused[str(w)] = round(100 * float(np.mean(hits)), 1)
        result[f"world{seed} all"] = {"embedder_r1": round(100 * float(np.mean(
            [np.argmax(c) == 0 for c in cosines])), 1), "fused_top5_r1": fused, "n": len(pairs)}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", default=None, help="a judge to score as it is (tiny:judge@64x2+pre or a folder); "
                    "without it a new judge is trained")
    for key in ("steps", "batch_size", "lr", "drop_image", "init_std", "rope_theta"):
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(JUDGE[key]), default=JUDGE[key])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.003, 0.01, 0.03, 0.1],
                    help="fusion weights w of cos + w · score")
    ap.add_argument("--val", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--save", type=Path, default=None, help="write the trained judge here")
    ap.add_argument("--out", type=Path, default=Path("runs/judge-plateau"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.start:
        rr, losses = Reranker(args.start, device="cpu", batch_size=32), []
    else:
        settings = {**JUDGE, **{k: getattr(args, k) for k in ("steps", "batch_size", "lr", "drop_image", "init_std",
                                                               "rope_theta")}}
        rr = judge_start(settings)
        losses = train_judge(rr, caption_rows(world(args.out, 1000), settings["tasks"]), settings)
    train_s = round(time.perf_counter() - start)
    rr.batch_size = 32
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "train_s": train_s,
              "loss_last_100": round(float(np.mean(losses[-100:])), 4) if losses else None,
              "eval": evaluate(rr, args.out, args.val, args.weights)}
    finish(rr, result, args.out / "caption-judge.jsonl", args.save)


if __name__ == "__main__":
    main()
