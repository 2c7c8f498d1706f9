"""`umr synthesize`: GME-style fused-modal training pairs from image (+ caption / passage) sources."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from umr.cli.argtypes import positive_int
from umr.errors import UmrError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synthesize", help="synthesise fused-modal training pairs (GME): generate, de-duplicate, filter",
        description="From image + text sources (an M-BEIR root's train split, or a folder of images with "
        "optional .txt / .json caption sidecars), a generator writes queries of three kinds: (image+text)→text "
        "(task 6), (image+text)→(image+text) (task 8) and text→(image+text) (task 2). Failed and duplicate "
        "queries are dropped, then (with --filter-model) every query whose positive the filter model does not "
        "rank within --top-k of the kind's pool. The result is an M-BEIR root: train on it with `data: OUT`, or "
        "mix it into another root with `mix_data: OUT` and `mix_share`. Rerunning the same command resumes.",
        epilog="example: umr synthesize --generator rule --source data/world --out data/synth "
        "--filter-model runs/base/final --top-k 5")
    p.add_argument("--generator", default="rule",
                   help="'rule' (templates over the source text) or an HF causal LM / Qwen2-VL MLLM (hub id or "
                   "folder) prompted to write each query (default rule)")
    p.add_argument("--source", required=True, type=Path, help="M-BEIR root or a folder of images")
    p.add_argument("--out", required=True, type=Path, help="output M-BEIR root (created; resumed when it exists)")
    p.add_argument("--filter-model", default=None,
                   help="retriever for the consistency filter: a model folder, hub id, tiny:<recipe>, minilm, random")
    p.add_argument("--top-k", type=int, default=5, help="keep a query when its positive ranks within the top K")
    p.add_argument("--kinds", nargs="+", default=None, choices=["it2t", "it2it", "t2it"],
                   help="query kinds to write (default all three)")
    p.add_argument("--limit", type=int, default=None, help="use at most N sources (a seeded sample)")
    p.add_argument("--split", default="train", help="source split of an M-BEIR root (default train)")
    p.add_argument("--seed", type=int, default=0, help="source sample and generator seed")
    p.add_argument("--dataset-id-base", type=int, default=90, help="dataset ids of the three kinds: N, N+1, N+2")
    p.add_argument("--max-new-tokens", type=int, default=32, help="HF generators: tokens per query")
    p.add_argument("--sample", action="store_true", help="HF generators: sample instead of greedy decoding")
    p.add_argument("--device", default=None, help="cpu / cuda for the HF generator (default: cuda if available)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="filter embedding batch")
    p.add_argument("--query-image", default="mirror", choices=["mirror", "same"],
                   help="(image+text)→(image+text) queries: a mirrored copy of the positive's image (default), or "
                   "the positive's own image (a copy shortcut)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.synthesis import SynthConfig, synthesize

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.top_k < 1:
        raise UmrError(f"--top-k must be at least 1, got {args.top_k}")
    if args.split == "test":
        print("warning: synthesising from the test split leaks test content into training data")
    options = {} if args.generator == "rule" else {"max_new_tokens": args.max_new_tokens, "do_sample": args.sample,
                                                   "device": args.device}
    cfg = SynthConfig(source=str(args.source), out=str(args.out), generator=args.generator,
                      generator_options=options, filter_model=args.filter_model, top_k=args.top_k, kinds=args.kinds,
                      limit=args.limit, split=args.split, seed=args.seed, dataset_id_base=args.dataset_id_base,
                      batch_size=args.batch_size, query_image=args.query_image)
    report = synthesize(cfg)
    print(report.table())
    print(f"sources without text (skipped): {report.no_text}; this run: {report.generated_now} generated, "
          f"{report.ranked_now} ranked by the filter, {report.seconds:.1f}s")
    print(f"wrote {args.out} (counts in {args.out / 'synthesis.json'})")
    return 0
