"""`umr demo`: the whole system offline, end to end (the README's main command)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the whole system offline: world → staged training + baselines → mine → re-rank → eval → "
        "index → report",
        description="Generate the offline benchmark world; train a tiny Qwen2-VL embedder with the U-MARVEL-style "
        "staged recipe (text → caption → instruction → mined hard negatives → re-ranker → distillation) and the "
        "baselines (plain contrastive, CLIP-SF, text-only) on the same budget; evaluate them on local and global "
        "pools, re-rank, build a FAISS index and write OUT/report/report.html (tables, plots, example queries). "
        "Needs no network. Every finished step is kept: rerunning the same command resumes (a failed step says "
        "which and why). --size small (default) takes 7 to 10 minutes on 2 CPU cores; --size tiny is the "
        "seconds-long smoke version the tests run. The plans are in umr/demo/plans.yaml.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="where every step writes its files")
    p.add_argument("--size", default="small", choices=["tiny", "small"], help="world size and training budget")
    p.add_argument("--seed", type=int, default=0, help="world and training seed (same seed → same numbers)")
    p.add_argument("--jobs", type=int, default=2, choices=[1, 2],
                   help="2: the plan's `parallel` baselines run in a second process beside the staged chain (one "
                   "torch thread each); 1: everything in this process, one step after another")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.demo import DemoStepError, run_demo

    try:
        run_demo(args.out, size=args.size, seed=args.seed, jobs=args.jobs)
    except DemoStepError as exc:
        print(f"error: {exc}")
        return 1
    return 0
