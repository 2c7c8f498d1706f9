"""`umr mine`: hard negatives per training query, written as a pairs JSONL the training config reads."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from umr.cli.argtypes import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mine", help="mine hard negatives (top-k, modality-aware, false-negative filter) for training",
        description="Embed the training queries and pool with a model (usually the previous training stage), "
        "retrieve each query's top-N, drop labelled positives (and, with --fn-filter / --fn-skip, likely unlabelled "
        "positives of the task's modality) and keep --take negatives. Output: pairs JSONL (query, positive, "
        "negatives + each negative's rank and score) that `umr train` reads with `data: FILE`, "
        "`num_negatives: TAKE`. Rerunning continues where a run stopped.",
        epilog="example: umr mine --model runs/stage-2/final --data data/world --pool global --top 100 --take 5 "
        "--modality-aware --fn-filter 0.95 --out runs/negatives.jsonl")
    p.add_argument("--model", required=True, help="tiny:<recipe> | a model directory or hub id | random | oracle")
    p.add_argument("--data", required=True, type=Path, help="M-BEIR data root (real M-BEIR or `umr world` output)")
    p.add_argument("--pool", default="global", choices=["local", "global"],
                   help="search each task's own pool or the union pool (default global: exposes wrong modalities)")
    p.add_argument("--split", default="train", help="query split to mine for (default train)")
    p.add_argument("--tasks", nargs="*", default=None, help="query sets: names, datasets or task ids")
    p.add_argument("--top", type=int, default=100, help="retrieved list length (default 100)")
    p.add_argument("--take", type=int, default=5, help="negatives per query (default 5)")
    p.add_argument("--modality-aware", action="store_true",
                   help="MM-Embed: include high-ranked candidates of the wrong modality for the task")
    p.add_argument("--wrong-quota", type=int, default=None,
                   help="with --modality-aware: wrong-modality negatives per query (default half of --take)")
    p.add_argument("--fn-filter", type=float, default=None, metavar="RATIO",
                   help="drop candidates of the task's modality scoring above RATIO × the positive's score "
                   "(NV-Retriever: 0.95; depends on the model's cosine scale)")
    p.add_argument("--fn-skip", type=int, default=0, metavar="N",
                   help="drop the N best-ranked candidates of the task's modality (a rank window: works at any "
                   "cosine scale; default 0)")
    p.add_argument("--strategy", default="hard", choices=["hard", "random"],
                   help="random: uniform pool negatives (the ablation baseline)")
    p.add_argument("--seed", type=int, default=0, help="random strategy seed")
    p.add_argument("--out", required=True, type=Path, help="output JSONL (appended to when it exists)")
    p.add_argument("--cache", type=Path, default=None, help="embedding cache folder (default: <out>.cache)")
    p.add_argument("--no-instructions", action="store_true", help="embed queries without task instructions")
    p.add_argument("--batch-size", type=positive_int, default=16, help="items per forward pass")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.mine.job import mine
    from umr.mine.negatives import MineOptions
    from umr.models.registry import load_embedder
    from umr.runtime.distributed import dist_info, rank_device

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.data.is_dir():
        raise FileNotFoundError(f"{args.data}: no such data folder")
    opts = MineOptions(top=args.top, take=args.take, fn_ratio=args.fn_filter, fn_skip=args.fn_skip,
                       modality_aware=args.modality_aware,
                       wrong_quota=args.wrong_quota, strategy=args.strategy, seed=args.seed)
    embedder = load_embedder(args.model, data_root=args.data, device=rank_device(args.device))
    cache = args.cache or args.out.with_name(args.out.name + ".cache")
    summary = mine(embedder, args.data, args.out, pool=args.pool, split=args.split, tasks=args.tasks, opts=opts,
                   cache_dir=cache, batch_size=args.batch_size, instructions=not args.no_instructions)
    if not dist_info().is_main:  # rank 0 searched and wrote the file; this rank embedded its shards
        return 0
    s = summary.to_dict()
    print(f"mined {s['written']} queries ({s['resumed']} already done), {s['negatives']} negatives, "
          f"wrong-modality share {s['wrong_modality_share']:.3f}")
    if args.fn_filter is not None or args.fn_skip:
        print(f"false-negative filters dropped {s['fn_dropped']} candidates")
    (args.out.with_name(args.out.name + ".summary.json")).write_text(json.dumps(s, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0
