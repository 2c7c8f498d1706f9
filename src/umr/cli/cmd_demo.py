"""`umr demo`: the offline demo end to end (the README's main command)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the offline demo end to end (world → embed → index → queries)",
                       description="Generate the offline benchmark world, embed its global candidate pool with a "
                       "tiny model, build a FAISS index and print the top results of three queries of different "
                       "modalities. Needs no network. Rerunning resumes finished work.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="where every step writes its files")
    p.add_argument("--model", default="tiny:gme", help="any model load_embedder accepts")
    p.add_argument("--size", default="tiny", help="world size: tiny | small | medium | large")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-k", type=int, default=3, help="results shown per query")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.demo import run_demo

    run_demo(args.out, model=args.model, size=args.size, seed=args.seed, k=args.k)
    return 0
