"""`umr index build` (embed a corpus resumably, in parallel, then index it) and `umr index info`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from umr.cli.argtypes import positive_int
from umr.cli.options import DTYPE_HELP, DTYPES, add_workers
from umr.errors import UmrError

EPILOG = """\
examples:
  umr index build --model text --corpus items.jsonl --out runs/idx
  umr index build --model gme-dir --corpus M-BEIR/cand_pool/local/mbeir_mscoco_task3_cand_pool.jsonl \\
      --out runs/coco --type hnsw
  torchrun --nproc_per_node 4 "$(which umr)" index build --model gme-dir --corpus pool.jsonl --out runs/big
  umr index build ... --backend milvus --milvus-uri http://milvus.internal:19530   # a Milvus server/cluster

Killing a build loses at most the shard in flight: rerun the same command to resume. Under torchrun or
`accelerate launch` each rank embeds every world_size-th shard and rank 0 merges and indexes.
"""


def corpus_root(corpus: Path, data_root: Path | None) -> Path:
    """Where relative image paths start: --data-root, else the M-BEIR root for a pool under cand_pool/, else
    the corpus file's folder. Always resolved: the paths written to the job (and its fingerprint) are the same
    however the root was spelled, and the index finds its images from any working directory."""
    if data_root is not None:
        return data_root.resolve()
    parents = list(corpus.resolve().parents)
    for i, parent in enumerate(parents):
        if parent.name == "cand_pool" and i + 1 < len(parents):
            return parents[i + 1]
    return corpus.resolve().parent


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="build and inspect search indexes",
                       description="Build a search index from a corpus, or show what an index directory holds.")
    verbs = p.add_subparsers(dest="index_command", metavar="<build|info>", required=True)

    b = verbs.add_parser(
        "build", help="embed a corpus (resumable, multi-process) and index it",
        description="Embed every item of a corpus (JSONL of items, or an M-BEIR candidate pool) in shards into "
        "OUT, then build an inner-product index in OUT/index. Finished shards are written atomically and "
        "recorded in OUT/manifest.json; rerunning after a crash or kill resumes without duplicating or losing "
        "items.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--model", required=True,
                   help="model: a local folder, a hub id, 'tiny:<recipe>', 'text' (MiniLM), or 'py:module:Class' "
                   "for your own Embedder subclass")
    b.add_argument("--recipe", default=None, help="recipe name or YAML (default: what the model declares)")
    b.add_argument("--corpus", required=True, type=Path, help="items JSONL or M-BEIR pool JSONL (did/txt/img_path)")
    b.add_argument("--data-root", type=Path, default=None,
                   help="folder that relative image paths start from (default: the M-BEIR root for files under "
                   "cand_pool/, else the corpus file's folder)")
    b.add_argument("--out", required=True, type=Path, help="job directory (created, or resumed if it exists)")
    b.add_argument("--type", default="flat", choices=["flat", "hnsw", "ivfpq"],
                   help="flat = exact; hnsw = fast graph search, high recall; ivfpq = compressed, for RAM-bound "
                   "corpora (default: flat)")
    b.add_argument("--backend", default="faiss", choices=["faiss", "milvus"],
                   help="faiss (embedded, default) or milvus (Milvus Lite file by default, or --milvus-uri)")
    b.add_argument("--milvus-uri", default=None,
                   help="Milvus server/cluster URI, e.g. http://host:19530 (default: OUT/index/milvus.db, Lite)")
    b.add_argument("--collection", default="umr", help="Milvus collection name (default: umr)")
    b.add_argument("--shard-size", type=positive_int, default=None,
                   help="items per shard, the unit of resume (default: the job's own when resuming, else 1000)")
    b.add_argument("--batch-size", type=positive_int, default=32, help="items per model forward (default: 32)")
    b.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: this rank's GPU if any, else cpu)")
    b.add_argument("--dtype", default=None, choices=DTYPES, help=DTYPE_HELP)
    add_workers(b)
    b.add_argument("--overwrite", action="store_true",
                   help="discard a job directory that was made for another model or corpus")
    b.add_argument("--reindex", action="store_true",
                   help="replace an existing index of another type/backend (embeddings are kept)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    b.set_defaults(func=run_build)

    i = verbs.add_parser("info", help="show what a job/index directory holds")
    i.add_argument("dir", type=Path, help="job directory (from `umr index build`)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=run_info)


def run_build(args: argparse.Namespace) -> int:
    from umr.index.build import build_index
    from umr.index.embed_job import EmbeddingStore, run_embedding_job
    from umr.items import read_items
    from umr.models.registry import load_embedder
    from umr.runtime.distributed import device_for, dist_info

    info = dist_info()
    if not args.corpus.exists():
        raise FileNotFoundError(f"corpus {args.corpus} not found")
    root = corpus_root(args.corpus, args.data_root)
    items = list(read_items(args.corpus, root=root))
    if not items:
        raise UmrError(f"{args.corpus}: no items")
    existing = EmbeddingStore(args.out)
    shard_size = args.shard_size or (existing.manifest()["shard_size"] if existing.exists() else 1000)
    embedder = load_embedder(args.model, args.recipe, args.device or device_for(info), args.dtype, data_root=root)
    embedder.num_workers = args.workers
    store = run_embedding_job(items, embedder, args.out, model_spec=args.model, shard_size=shard_size,
                              batch_size=args.batch_size, overwrite=args.overwrite, info=info,
                              show_progress=not args.no_progress, role="document")
    if not info.is_main:
        return 0
    options: dict[str, Any] = {}
    if args.backend == "milvus":
        options["collection"] = args.collection
        if args.milvus_uri:
            options["uri"] = args.milvus_uri
    index, built = build_index(store, args.type, args.backend, reindex=args.reindex,
                               show_progress=not args.no_progress, **options)
    counts = ", ".join(f"{m}: {c}" for m, c in index.modality_counts().items())
    verb = "built" if built else "up to date:"
    print(f"{verb} {args.backend} {args.type} index of {len(index)} items ({counts}) in {args.out / 'index'}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from umr.index.base import read_index_json
    from umr.index.embed_job import EmbeddingStore

    store = EmbeddingStore(args.dir)
    m = store.manifest()
    done = sum(s["end"] - s["start"] for s in m.get("shards", []))
    out: dict[str, Any] = {"dir": str(args.dir), "status": m["status"], "items": m["n_items"], "embedded": done,
                           "dim": m["dim"], "model": m["model"], "model_spec": m.get("model_spec"),
                           "modalities": m["corpus"].get("modalities")}
    if (args.dir / "index" / "index.json").exists():
        spec = read_index_json(args.dir / "index")
        out["index"] = {k: spec.get(k) for k in ("backend", "type", "count", "generation", "uri", "collection")
                        if spec.get(k) is not None}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for key, value in out.items():
            print(f"{key:>11}: {value}")
    return 0
