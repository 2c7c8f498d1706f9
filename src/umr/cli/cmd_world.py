"""`umr world`: generate the offline benchmark (design.md §4) in M-BEIR's format."""

from __future__ import annotations

import argparse
import time

from umr.data.world import SIZES, build_world
from umr.errors import UmrError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("world", help="generate the offline benchmark world in M-BEIR format",
                       description="Generate a procedurally rendered world of shapes and named entities with all 8 "
                       "M-BEIR task types, 16 eval sets, train/val/test splits, local and global pools. Same seed "
                       "→ byte-identical files. Example: umr world --out data/world --size small --seed 0")
    p.add_argument("--out", required=True, help="output folder (the M-BEIR data root)")
    p.add_argument("--size", default="tiny", choices=list(SIZES),
                   help="tiny (tests, <10 s), small (demo/training), medium (≥20k test candidates), large")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--image-size", type=int, default=112, help="side of the rendered PNGs in pixels (default 112)")
    p.add_argument("--workers", type=int, default=None, help="rendering processes (default: up to 4)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.image_size < 16:
        raise UmrError(f"--image-size must be at least 16, got {args.image_size}")
    t0 = time.perf_counter()
    manifest = build_world(args.out, size=args.size, seed=args.seed, image_size=args.image_size,
                           workers=args.workers)
    counts = manifest["counts"]
    print(f"world written to {args.out} in {time.perf_counter() - t0:.1f}s: {manifest['images']} images")
    for split in ("train", "val", "test"):
        sets = {k: v for k, v in counts[split].items() if k != "global_pool"}
        n_q = sum(v["queries"] for v in sets.values())
        print(f"  {split:5s}: {len(sets)} eval sets, {n_q} queries, global pool {counts[split]['global_pool']}")
    return 0
