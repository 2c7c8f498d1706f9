"""Global-pool M-BEIR eval of a tiny MLLM on the generated world: how long does it take on this machine?

Usage:  python benchmarks/eval_global_pool.py [--size medium] [--model tiny:gme] [--threads 2] [--world DIR]

Builds the world (medium: 20,798 test candidates in the global pool, 3,200 queries over 16 eval sets) unless
--world points at one, then runs `umr eval --pool global` with no embedding cache, so every candidate and query
is embedded, and prints the wall-clock time split into pool embedding, query embedding and search.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="medium")
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
    from umr.eval.baselines import resolve_model
    from umr.eval.mbeir import EvalOptions, evaluate

    tmp = tempfile.TemporaryDirectory()
    world = Path(args.world) if args.world else Path(tmp.name) / "world"
    if not (world / "world.json").exists():
        t0 = time.perf_counter()
        build_world(world, size=args.size, seed=0)
        print(f"built the {args.size} world in {time.perf_counter() - t0:.1f}s")
    n_pool = len(read_pool(global_pool_file(world), world, check_images=False))
    embedder = resolve_model(args.model)
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
