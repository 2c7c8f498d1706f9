"""Global-pool M-BEIR eval of a tiny MLLM on the generated world: how long does it take on this machine?

Usage:  python benchmarks/eval_global_pool.py [--pool-per-set 650] [--size medium] [--model tiny:gme] [--world DIR]

Builds a world whose global test pool has ≥ 10,000 candidates (650 per eval set → 10,396; 50 queries per set)
— or `--size medium` (20,798 candidates, 3,200 queries), or reuses --world — then runs `umr eval --pool global`
with no embedding cache, so every candidate and query is embedded, and prints the wall-clock time split into
pool embedding, query embedding and search.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default=None, help="a named world size instead of the custom one")
    parser.add_argument("--pool-per-set", type=int, default=650, help="test candidates per eval set (custom size)")
    parser.add_argument("--queries-per-set", type=int, default=50)
    parser.add_argument("--model", default="tiny:gme")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the claim is for 2 cores)")
    parser.add_argument("--world", default=None, help="an existing world to reuse")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from umr.data.mbeir import read_pool
    from umr.data.mbeir_sets import global_pool_file
    from umr.data.world import build_world
    from umr.data.world.writer import SizeSpec
    from umr.eval.mbeir import EvalOptions, evaluate
    from umr.models.registry import load_embedder

    tmp = tempfile.TemporaryDirectory()
    world = Path(args.world) if args.world else Path(tmp.name) / "world"
    if not (world / "world.json").exists():
        t0 = time.perf_counter()
        size = args.size or SizeSpec({"train": 4, "val": 4, "test": args.queries_per_set},
                                     {"train": 8, "val": 8, "test": args.pool_per_set})
        build_world(world, size=size, seed=0)
        print(f"built the world in {time.perf_counter() - t0:.1f}s")
    n_pool = len(read_pool(global_pool_file(world), world, check_images=False))
    embedder = load_embedder(args.model)
    t0 = time.perf_counter()
    report = evaluate(embedder, world, EvalOptions(pool="global", batch_size=args.batch_size))
    wall = time.perf_counter() - t0
    n_q = sum(r.metrics.n_queries for r in report.results)
    t = report.timings
    print(f"model {args.model} ({report.model.get('name')}, dim {report.model.get('dim')}), "
          f"torch threads {torch.get_num_threads()}")
    print(f"global pool: {n_pool} candidates; {n_q} queries over {len(report.results)} eval sets")
    print(f"eval wall time: {wall:.1f}s  (pool embedding {t['embed_pool_s']:.1f}s = "
          f"{1000 * t['embed_pool_s'] / n_pool:.2f} ms/candidate, queries {t['embed_queries_s']:.1f}s, "
          f"search+scoring {t['search_s']:.1f}s)")
    print(f"average headline recall {100 * report.average:.1f}  (untrained model: near chance is expected)")


if __name__ == "__main__":
    main()
