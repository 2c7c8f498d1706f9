"""`umr embed`: embed a JSONL of items into a resumable job directory (.npy shards + ids + manifest)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from umr.cli.argtypes import positive_int
from umr.cli.options import DTYPE_HELP, DTYPES, add_workers
from umr.errors import UmrError
from umr.items import ROLES, Item, ItemError, read_items

if TYPE_CHECKING:
    from umr.models.base import Embedder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed", help="embed corpus items (JSONL) with any umr model, resumably",
        description="Embed a JSONL file of items (one object a line: id, text, image, video, instruction; "
        "M-BEIR pool lines work too) as documents (no instruction; --role query: as queries, each with its "
        "own instruction) into OUT as float32 .npy shards + "
        "ids.jsonl + manifest.json. "
        "Rerunning the same command resumes: finished shards are kept and checked, only the rest is embedded.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="local folder, hub id, 'tiny:<recipe>' or 'text'")
    p.add_argument("--recipe", default=None, help="recipe name or YAML file (default: what the model declares)")
    p.add_argument("--input", required=True, type=Path, help="items JSONL; relative image paths are resolved "
                   "against --root")
    p.add_argument("--root", type=Path, default=None, help="folder for relative paths (default: the JSONL's)")
    p.add_argument("--out", required=True, type=Path, help="job directory (created; resumed if it exists)")
    p.add_argument("--role", default="document", choices=ROLES,
                   help="document: candidates, embedded plainly; query: each item with its own instruction")
    p.add_argument("--skip-bad", action="store_true",
                   help="check every item first; write unreadable ones to OUT/rejected.jsonl and embed the rest")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--shard-size", type=positive_int, default=None,
                   help="items per shard, the unit of resume (default: the job's own when resuming, else 1000)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available)")
    p.add_argument("--dtype", default=None, choices=DTYPES, help=DTYPE_HELP)
    add_workers(p)
    p.add_argument("--overwrite", action="store_true", help="replace a job directory made for another model/corpus")
    p.set_defaults(func=run)


def screen(items: list[Item], embedder: Embedder) -> tuple[list[Item], list[dict[str, str | None]]]:
    """Split items into those that load (and whose text the model can take) and {id, error} records for the
    others."""
    good, bad = [], []
    for item in tqdm(items, desc="checking items", unit="item"):
        try:
            item.validate()
            if (problem := embedder.text_problem(item)) is not None:
                raise ItemError(item, problem)
            good.append(item)
        except ItemError as exc:
            bad.append({"id": item.id, "error": exc.problem})
    for b in bad:
        print(f"rejected {b['id']}: {b['error']}", file=sys.stderr)
    return good, bad


def run(args: argparse.Namespace) -> int:
    from umr.index.embed_job import EmbeddingStore, run_embedding_job
    from umr.models.registry import load_embedder

    # a resolved root: the job's fingerprint is the same however the paths were spelled (relative or absolute)
    items = list(read_items(args.input, root=(args.root or args.input.parent).resolve()))
    if not items:
        raise UmrError(f"{args.input}: no items")
    rejected: list[dict[str, str | None]] = []
    embedder = load_embedder(args.model, recipe=args.recipe, device=args.device, dtype=args.dtype)
    embedder.num_workers = args.workers
    if args.skip_bad:
        items, rejected = screen(items, embedder)
    existing = EmbeddingStore(args.out)
    shard_size = args.shard_size or (existing.manifest()["shard_size"] if existing.exists() else 1000)
    store = run_embedding_job(items, embedder, args.out, model_spec=args.model, shard_size=shard_size,
                              batch_size=args.batch_size, overwrite=args.overwrite, role=args.role)
    if args.skip_bad:  # written once the job directory exists, so the store knows the file as its own
        (args.out / "rejected.jsonl").write_text("".join(json.dumps(b) + "\n" for b in rejected))
        print(f"{len(rejected)} item(s) rejected, listed in {args.out / 'rejected.jsonl'}")
    manifest = store.manifest()
    print(f"embedded {manifest['n_items']} items → {args.out / 'embeddings.npy'} "
          f"[{manifest['n_items']} × {manifest['dim']}], model {manifest['model'].get('name')}, role {args.role}")
    return 0
