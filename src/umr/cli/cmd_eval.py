"""`umr eval`: the M-BEIR protocol on real M-BEIR or a generated world."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from umr.cli.argtypes import positive_int
from umr.cli.options import DTYPE_HELP, DTYPES, add_workers
from umr.errors import UmrError
from umr.eval.metrics import DEFAULT_KS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on M-BEIR-format data (local or global pool)",
                       description="Embed queries and candidates (cached and resumable), search with FAISS and "
                       "report hit-rate Recall@k, MRR@10, NDCG@10 and M-BEIR's headline number per eval set. "
                       "Example: umr eval --model oracle --data data/world --pool global. "
                       "On several GPUs: torchrun --nproc_per_node 8 --no-python umr eval ... (every rank embeds "
                       "its shards through the cache, rank 0 searches and writes the results; rerun the same "
                       "command to resume after a kill)")
    p.add_argument("--model", required=True,
                   help="random | oracle | minilm | tiny:<recipe> | a model directory or hub id")
    p.add_argument("--data", required=True, help="M-BEIR data root (real M-BEIR or `umr world` output)")
    p.add_argument("--pool", default="local", choices=["local", "global", "global-modality"],
                   help="candidate pool (default local); global-modality: the global pool's candidates of the task's "
                   "modality only, which separates the global pool's cost by size from its modality bias")
    p.add_argument("--split", default="test",
                   help="query split: any with query/SPLIT/ and qrels/SPLIT/ folders (test, val, train …)")
    p.add_argument("--tasks", nargs="*", default=None,
                   help="eval sets to run: names (mscoco_task0), datasets (mscoco) or tasks (task7 / 7)")
    p.add_argument("--k", nargs="*", type=int, default=list(DEFAULT_KS), help="recall cut-offs (default 1 5 10 20 50)")
    p.add_argument("--out", default=None, help="results folder (default: runs/eval/<model>-<pool>)")
    p.add_argument("--cache", default=None, help="embedding cache folder (default: <out>/cache)")
    p.add_argument("--no-cache", action="store_true", help="do not cache embeddings")
    p.add_argument("--no-instructions", action="store_true", help="embed queries without task instructions")
    p.add_argument("--batch-size", type=positive_int, default=16, help="items per forward pass (default 16)")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--dtype", default=None, choices=DTYPES, help=DTYPE_HELP)
    add_workers(p)
    p.add_argument("--skip-image-check", action="store_true",
                   help="do not stat every image while loading (faster on a huge pool; a missing image then "
                   "fails when it is embedded)")
    p.add_argument("--lenient", action="store_true",
                   help="count unknown dids in qrels as absent positives instead of stopping")
    p.add_argument("--ties", choices=["pool-order", "pessimistic"], default="pool-order",
                   help="equal scores: the earlier pool candidate ranks first (a stable sort on descending "
                   "score; default), or every tie ranks above the positive; sets where the other rule gives "
                   "other numbers are printed with both")
    p.add_argument("--format-text", action="store_true",
                   help="normalise query and candidate texts as UniIR does (capitalised, final full stop) for any "
                   "model; the lamra and u-marvel recipes already do it themselves")
    p.add_argument("--compare", choices=["published"], default=None,
                   help="print the papers' per-set numbers beside ours (real M-BEIR: all 16 set names)")
    p.add_argument("--shard-size", type=positive_int, default=1000,
                   help="items per embedding-cache shard, the unit of resume and of work between ranks (default 1000)")
    p.add_argument("--store-dtype", choices=["float32", "float16"], default="float32",
                   help="how the embedding cache keeps vectors: float16 halves disk and RAM (UniIR stores its M-BEIR "
                   "embeddings so; scores move by ~1e-3, ties can appear). Default float32")
    p.add_argument("--search-device", default=None,
                   help="where the exact search multiplies (cpu / cuda / cuda:1; default: cuda when available)")
    p.add_argument("--search-kernel", choices=["auto", "torch", "faiss"], default="auto",
                   help="block search kernel: torch (any device), faiss (CPU BLAS); auto = the faster one measured "
                   "by benchmarks/eval_scale.py (torch on a GPU, faiss on a CPU)")
    p.add_argument("--progress", action="store_true", help="show progress bars (embedding and search, with ETA)")
    p.add_argument("--rerank", type=int, default=0, metavar="N",
                   help="re-rank each query's top N with an MLLM Yes/No re-ranker (default 0 = off)")
    p.add_argument("--fuse-weight", type=float, default=1.0, metavar="W",
                   help="re-ranked score = cos + W · P(Yes) (default 1.0)")
    p.add_argument("--reranker", default=None,
                   help="re-ranker model (Qwen2-VL / LLaVA-NeXT folder, hub id or tiny:<recipe>; default: --model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.eval.mbeir import EvalOptions, evaluate
    from umr.eval.report import print_report, write_results
    from umr.models.registry import load_embedder
    from umr.runtime.distributed import dist_info, rank_device

    if any(k < 1 for k in args.k) or not args.k:
        raise UmrError(f"--k needs positive cut-offs, got {args.k}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = Path(args.data)
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no such data folder")
    slug = args.model.replace("/", "_").replace(":", "-").strip("._") or "model"
    out = Path(args.out) if args.out else Path("runs") / "eval" / f"{slug}-{args.pool}"
    cache = None if args.no_cache else Path(args.cache) if args.cache else out / "cache"
    embedder = load_embedder(args.model, data_root=data, device=rank_device(args.device), dtype=args.dtype)
    embedder.num_workers = args.workers
    opts = EvalOptions(pool=args.pool, split=args.split, tasks=args.tasks, ks=tuple(sorted(set(args.k))),
                       instructions=not args.no_instructions, batch_size=args.batch_size, cache_dir=cache,
                       check_images=not args.skip_image_check, strict=not args.lenient, show_progress=args.progress,
                       ties=args.ties, format_text=args.format_text, store_dtype=args.store_dtype,
                       shard_size=args.shard_size,
                       search_device=args.search_device, search_kernel=args.search_kernel)
    reranker = None
    if args.rerank > 0:
        from umr.rerank.prompted import Reranker

        reranker = Reranker(args.reranker or args.model, device=args.device)
        opts.rerank, opts.fuse_weight = args.rerank, args.fuse_weight
    report = evaluate(embedder, data, opts, reranker=reranker)
    if not dist_info().is_main:  # rank 0 searches, scores and writes; this rank embedded its shards
        return 0
    compare = args.compare == "published"
    print_report(report, compare=compare)
    paths = write_results(report, out, compare=compare)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
