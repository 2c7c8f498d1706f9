"""Issue 20 probe: can a tiny MLLM yes/no judge (`umr.rerank.prompted.Reranker`) learn relevance on the world?

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/judge_probe.py --model tiny:u-marvel@64x2 \
        --negatives mixed --lr 5e-4 --epochs 1 [--out runs/judge-probe]

Trains a judge point-wise (full fine-tuning: no LoRA) on the pretraining world (`umr world --size small --seed
1000`, as the tiny bases), each positive paired with one negative drawn from its query's list:
- random: uniform draws from the query's local pool;
- hard:   the pretrained embedder's top 20 (tiny:u-marvel@64x2+pre), positives removed;
- mixed:  both lists, so half the draws are hard.

It is then judged on validation world 2's val split, where each query's candidates are its positive and the 9
best negatives of that embedder: R@1 of the positive among the 10 by P(Yes) (chance 10 %) and the AUC of
positive against negative (chance 0.5). One JSON line is printed and appended to OUT/results.jsonl; every
measured line is in docs/quality.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from umr.data.world import build_world
from umr.mine.job import mine
from umr.mine.negatives import MineOptions
from umr.models.registry import load_embedder
from umr.rerank.prompted import Reranker
from umr.train.data import read_pairs
from umr.train.reranker import RerankTrainConfig, train_reranker

BASE = "tiny:u-marvel@64x2+pre"  # the embedder whose top lists are the hard negatives


def world(out: Path, seed: int) -> Path:
    root = out / f"world-{seed}"
    if not (root / "world.json").is_file():
        build_world(root, size="small", seed=seed)
    return root


def mined(out: Path, name: str, root: Path, split: str, opts: MineOptions) -> Path:
    path = out / f"{name}.jsonl"
    if not (out / f"{name}.done").is_file():
        mine(load_embedder(BASE, device="cpu"), root, path, pool="local", split=split, opts=opts,
             cache_dir=out / f"cache-{root.name}", batch_size=32)
        (out / f"{name}.done").write_text("ok\n")
    return path


def training_pairs(out: Path, kind: str) -> Path:
    root = world(out, 1000)
    lists = {"random": [mined(out, "random", root, "train", MineOptions(take=19, strategy="random"))],
             "hard": [mined(out, "hard", root, "train", MineOptions(top=20, take=19))]}
    lists["mixed"] = lists["random"] + lists["hard"]
    if len(lists[kind]) == 1:
        return lists[kind][0]
    path = out / "mixed.jsonl"
    if not path.is_file():
        rows = [[json.loads(line) for line in p.open()] for p in lists[kind]]
        hard = {r["qid"]: r for r in rows[1]}
        with path.open("w") as fh:
            for r in rows[0]:
                r["negatives"] = r["negatives"] + hard.get(r["qid"], {}).get("negatives", [])
                fh.write(json.dumps(r) + "\n")
    return path


def judge(model: str, pairs_path: Path, n: int = 150) -> dict[str, float]:
    pairs = read_pairs(pairs_path)
    pairs = pairs[::max(1, len(pairs) // n)][:n]
    rr = Reranker(model, device="cpu", batch_size=20)
    r1, auc = [], []
    for p in pairs:
        s = rr.score(p.query, [p.positive, *p.negatives[:9]])
        r1.append(float(s[0] > s[1:].max()))
        auc.append(float((s[0] > s[1:]).mean() + 0.5 * (s[0] == s[1:]).mean()))
    return {"r1_of_10": round(100 * float(np.mean(r1)), 1), "auc": round(float(np.mean(auc)), 3), "n": len(pairs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny:u-marvel@64x2", help="the judge's start: tiny:<spec>[+pre] or a folder")
    ap.add_argument("--negatives", choices=["random", "hard", "mixed"], default="mixed")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--epochs", type=int, default=1, help="passes over the 6,400 training queries (800 steps each)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop early (a smoke run)")
    ap.add_argument("--out", type=Path, default=Path("runs/judge-probe"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = training_pairs(args.out, args.negatives)
    val = mined(args.out, "val-hard", world(args.out, 2), "val", MineOptions(top=10, take=9))
    tag = f"{args.model.replace(':', '-').replace('@', '-')}-{args.negatives}-lr{args.lr:g}-e{args.epochs}"
    start = time.perf_counter()
    final = train_reranker(RerankTrainConfig(model=args.model, data=str(data), output_dir=str(args.out / tag),
                                             lora=None, lr=args.lr, epochs=args.epochs, max_steps=args.max_steps,
                                             batch_size=8, device="cpu"))
    losses = [json.loads(line)["loss"] for line in (args.out / tag / "log.jsonl").open()]
    tail = losses[-200:]
    result = {"judge": args.model, "negatives": args.negatives, "lr": args.lr, "steps": len(losses),
              "loss_last_200": round(float(np.mean(tail)), 4), "train_s": round(time.perf_counter() - start),
              **judge(str(final), val)}
    print(json.dumps(result))
    with (args.out / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
