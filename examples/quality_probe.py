"""Issue 20 probe: which later-stage settings give the staged model a working global pool? One variant per run.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/quality_probe.py VARIANT --seed 2 \
        [--base tiny:u-marvel@64x2] [--lr 3e-4] [--tag=-random] [--out runs/quality-probe]

Trains the demo plan's chain up to its instruct stage once per world seed (`umr world --size small --seed S`; 2
and 3 are the validation worlds, never the demo's 0 nor the report seeds 1 and 4), then the variant's later
stages from that model, and evaluates the variant's final model on the test split's local pools, global pool and
the global pool's task-modality part. Prints one JSON line and appends it to OUT/results.jsonl. One torch
thread, so two probes share the 2 cores. `--base` changes the chain's start (the plan's: the pretrained
tiny:u-marvel@64x2+pre; the random tiny:u-marvel@64x2 gave the first table of docs/quality.md) and needs its
own `--tag=…` (with "=": a tag starts with "-"). Every measured run is in docs/quality.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from umr.data.world import build_world
from umr.demo.pipeline import evaluate_model, load_plan, staged_config, train_staged

HARD = {"name": "hard", "max_steps": 40, "lr": 5.0e-5}
GLOBAL_MA = {"top": 50, "take": 2, "pool": "global", "modality_aware": True, "max_per_set": 100}
#: variant → the stages after `instruct` (dicts as in plans.yaml)
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "instruct": [],
    "inbatch": [{**HARD}],
    "old-hard": [{**HARD, "mine": {"top": 50, "take": 2, "fn_ratio": 0.95, "max_per_set": 100}}],
    "local-skip": [{**HARD, "mine": {"top": 50, "take": 2, "fn_skip": 2, "max_per_set": 100}}],
    "ma": [{**HARD, "mine": {**GLOBAL_MA}}],
    "ma-skip": [{**HARD, "mine": {**GLOBAL_MA, "fn_skip": 2}}],
    "ma-ratio1": [{**HARD, "mine": {**GLOBAL_MA, "fn_ratio": 1.0}}],
    "ma-mixed": [{**HARD, "batch_by": "none", "mine": {**GLOBAL_MA, "fn_skip": 2}}],
    "ma-skip10": [{**HARD, "mine": {**GLOBAL_MA, "fn_skip": 10}}],
    "local-skip10": [{**HARD, "mine": {"top": 50, "take": 2, "fn_skip": 10, "max_per_set": 100}}],
    "ma-skip-80": [{**HARD, "max_steps": 80, "mine": {**GLOBAL_MA, "fn_skip": 2}}],
    "ma-skip-lr1e-4": [{**HARD, "lr": 1.0e-4, "mine": {**GLOBAL_MA, "fn_skip": 2}}],
    "ma4-lr1e-4-80": [{**HARD, "lr": 1.0e-4, "max_steps": 80, "mine": {**GLOBAL_MA, "take": 4, "fn_skip": 2}}],
    "ma4-mixed-lr1e-4-80": [{**HARD, "lr": 1.0e-4, "max_steps": 80, "batch_by": "none",
                             "mine": {**GLOBAL_MA, "take": 4, "fn_skip": 2}}],
}


RR = {"name": "reranker", "type": "reranker", "max_steps": 40, "batch_size": 8, "lr": 1.0e-3, "symmetric": False,
      "lora": {"r": 8, "alpha": 16, "dropout": 0.0}, "mine": {"top": 10, "take": 9, "max_per_set": 30}}
VARIANTS.update({
    "rr-lora": [{**HARD}, {**RR}],
    "rr-full-1e-4": [{**HARD}, {**RR, "lora": None, "lr": 1.0e-4, "max_steps": 150}],
    "rr-full-3e-4": [{**HARD}, {**RR, "lora": None, "lr": 3.0e-4, "max_steps": 150}],
    "rr-lora-150": [{**HARD}, {**RR, "max_steps": 150}],
})

#: variants that replace the instruct stage too: (instruct stage, stages after it)
INSTRUCT = {"name": "instruct", "max_steps": 160}
FROM_CAPTION: dict[str, list[dict[str, Any]]] = {
    "qmod": [{**INSTRUCT, "batch_by": "query_modality"}],
    "qmod-inbatch": [{**INSTRUCT, "batch_by": "query_modality"}, {**HARD}],
    "qmod-hard-task": [{**INSTRUCT, "batch_by": "query_modality"}, {**HARD, "mine": {**GLOBAL_MA, "fn_skip": 2}}],
    "mixed": [{**INSTRUCT, "batch_by": "none"}],
    "task-then-qmod": [{**INSTRUCT, "max_steps": 120}, {**HARD, "name": "qmod", "max_steps": 80,
                                                       "batch_by": "query_modality", "lr": 1.0e-4}],
}
VARIANTS.update(FROM_CAPTION)


def _link_stages(src: Path, out: Path, n: int) -> None:
    (out / "train" / "u-marvel").mkdir(parents=True, exist_ok=True)
    for d in src.glob("stage-*"):
        link = out / "train" / "u-marvel" / d.name
        if int(d.name.split("-")[1]) < n and not link.exists():
            link.symlink_to(d.resolve())


def run(variant: str, seed: int, out: Path, base: str | None = None, tag: str = "",
        lr: float | None = None) -> dict[str, Any]:
    plan = load_plan("small")
    if lr:
        plan["staged"]["lr"] = lr
    if base:
        plan["staged"]["model"] = base
    world = out / f"world-s{seed}"
    if not (world / "world.json").is_file():
        build_world(world, size=plan["world"], seed=seed)
    stages = plan["staged"]["stages"]
    upto = next(i for i, s in enumerate(stages) if s["name"] == "instruct") + (variant not in FROM_CAPTION)
    base_plan = copy.deepcopy(plan)
    base_plan["staged"]["stages"] = stages[:upto]
    base_out = out / f"s{seed}{tag}" / ("base" if variant not in FROM_CAPTION else "base-caption")
    if variant in FROM_CAPTION:  # the text and caption stages are the ones the instruct base already trained
        _link_stages(out / f"s{seed}{tag}" / "base" / "train" / "u-marvel", base_out, upto)
    train_staged(staged_config(base_plan, world, base_out, seed))
    var_out = out / f"s{seed}{tag}" / variant
    _link_stages(base_out / "train" / "u-marvel", var_out, upto)
    var_plan = copy.deepcopy(plan)
    var_plan["staged"]["stages"] = stages[:upto] + VARIANTS[variant]
    t0 = time.time()
    result = train_staged(staged_config(var_plan, world, var_out, seed))
    seconds = time.time() - t0
    glob = evaluate_model(result["final"], world, var_out, "m", "global")
    loc = evaluate_model(result["final"], world, var_out, "m", local_from_global=True)
    row = {"global_right_modality": glob["same_modality"]["average"]}  # the global pool's task-modality part
    if "reranker" in result["stages"]:
        rr = str(Path(result["stages"]["reranker"]) / "final")
        for n in (5, 10):
            for w in (1.0, 0.3):
                r = evaluate_model(result["final"], world, var_out, "m", reranker=rr, rerank=n, fuse_weight=w,
                                   local_from_global=True)
                row[f"rr{n}w{w}"] = [r["r1"], r["mrr10"]]
    return {**row, "tag": tag, "variant": variant, "seed": seed, "local": loc["average"], "global": glob["average"],
            "wrong": glob["wrong_modality"], "r1": loc["r1"], "mrr10": loc["mrr10"], "train_s": round(seconds, 1)}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/quality-probe"))
    ap.add_argument("--base", default=None, help="start model of the chain (default: the plan's)")
    ap.add_argument("--lr", type=float, default=None, help="the chain's LR (default: the plan's)")
    ap.add_argument("--tag", default="", help="suffix of the run folders (another --base needs its own)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    row = run(args.variant, args.seed, args.out, args.base, args.tag, args.lr)
    print(json.dumps(row))
    with (args.out / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
