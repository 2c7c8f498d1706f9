"""`umr search`: embed one query (text, image or both, with an instruction) and print the top-k of an index."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from umr.errors import UmrError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="search an index with a text and/or image query",
        description="Embed a query with the model the index was built with (recorded in the index) and print "
        "the k best candidates by inner product. A query is text, an image, or both; --instruction is the task "
        "instruction that instruction-tuned models (GME, U-MARVEL, …) expect on queries.",
        epilog='example: umr search --index runs/idx --text "a red double-decker bus" --modality image -k 5',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", required=True, type=Path, help="job directory from `umr index build` (or its index/)")
    p.add_argument("--text", default=None, help="query text")
    p.add_argument("--image", type=Path, default=None, help="query image file")
    p.add_argument("--instruction", default=None,
                   help='task instruction, e.g. "Retrieve an image that matches the caption."')
    p.add_argument("--modality", action="append", default=None,
                   help="return only candidates of this modality: text, image or image,text (repeatable)")
    p.add_argument("-k", "--k", type=int, default=10, help="how many results (default: 10)")
    p.add_argument("--model", default=None,
                   help="model to embed the query (default: the one recorded in the index; must match it)")
    p.add_argument("--device", default=None, help="cpu, cuda … (default: cuda if available)")
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"],
                   help="model dtype (default: bf16 on GPU, fp32 on CPU; an index built in one searches in another)")
    p.add_argument("--mmap", action="store_true", help="memory-map flat index files instead of reading them")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--rerank", type=int, default=0, metavar="N",
                   help="re-rank the top N with an MLLM Yes/No re-ranker: score = cos + W · P(Yes); N may be over "
                   "-k (the top N are re-ranked, the first k printed)")
    p.add_argument("--fuse-weight", type=float, default=1.0, metavar="W", help="weight of P(Yes) (default 1.0)")
    p.add_argument("--reranker", default=None, help="re-ranker model (default: the query model)")
    p.set_defaults(func=run)


def find_index_dir(path: Path) -> Path:
    for candidate in (path / "index", path):
        if (candidate / "index.json").exists():
            return candidate
    raise FileNotFoundError(f"{path} holds no index (no index.json in it or in {path / 'index'}); build one with "
                            "`umr index build`")


def _rerank(args: argparse.Namespace, query: Any, found: list, records: list, spec: str) -> tuple[list, list]:
    """Re-order the top --rerank results by cos + W · P(Yes) (umr.rerank); scores shown are the fused ones."""
    import numpy as np

    from umr.items import Item
    from umr.rerank.fusion import rerank_list
    from umr.rerank.prompted import Reranker

    reranker = Reranker(args.reranker or spec, device=args.device, dtype=args.dtype)
    query = query.with_instruction(args.instruction)
    cands = [Item(text=(r or {}).get("text"), image=(r or {}).get("image"), id=i) for (_, i), r in zip(found, records)]
    order, fused = rerank_list(np.arange(len(found)), np.array([s for s, _ in found]),
                               lambda rows: reranker.score(query, [cands[int(j)] for j in rows]), args.rerank,
                               args.fuse_weight)
    return [(float(f), found[int(j)][1]) for j, f in zip(order, fused)], [records[int(j)] for j in order]


def run(args: argparse.Namespace) -> int:
    from umr.index import load_index
    from umr.index.portable import check_model, record_image_path
    from umr.items import Item
    from umr.models.registry import load_embedder

    if args.text is None and args.image is None:
        raise UmrError("give a query: --text, --image, or both")
    if args.k < 1:
        raise UmrError(f"-k must be ≥ 1, got {args.k}")
    directory = find_index_dir(args.index)
    index = load_index(directory, mmap=args.mmap)
    spec = args.model or index.info.get("model_spec")
    if not spec:
        raise UmrError(f"{directory} does not record which model built it; pass --model")
    embedder = load_embedder(spec, device=args.device, dtype=args.dtype)
    check_model(embedder.describe(), index.info, directory)
    query = Item(text=args.text, image=str(args.image) if args.image else None, id="query")
    if args.image is not None:
        query.validate()
    vec = embedder.encode_query([query], instruction=args.instruction)
    # re-ranking reorders the top --rerank, which may reach past k; the result arrays are [1, depth], so depth
    # is capped at the index size (k = 10^9 would ask for gigabytes)
    depth = min(max(args.k, args.rerank), max(len(index), 1))
    scores, ids = index.search(vec, depth, modality=args.modality)
    found = [(float(s), i) for s, i in zip(scores[0], ids[0], strict=True) if i is not None]
    records = index.get([i for _, i in found])
    root = index.info.get("image_root")
    for rec in records:  # relative paths start at the index's image root, not at this working directory
        if rec and rec.get("image"):
            rec["image"] = str(record_image_path(rec["image"], directory, root))
    if args.rerank > 0 and found:
        found, records = _rerank(args, query, found, records, spec)
    results = [{"rank": r + 1, "score": round(s, 6), **(rec or {"id": i})}
               for r, ((s, i), rec) in enumerate(zip(found[:args.k], records[:args.k], strict=True))]
    if args.json:
        print(json.dumps({"query": query.to_dict() | {"instruction": args.instruction},
                          "modality": args.modality, "k": args.k, "results": results}, ensure_ascii=False, indent=1))
        return 0
    if not results:
        print("no results" + (f" of modality {', '.join(args.modality)}" if args.modality else ""))
    for r in results:
        text = (r.get("text") or "").replace("\n", " ")
        text = text if len(text) <= 60 else text[:57] + "..."
        image = f"  [{r['image']}]" if r.get("image") else ""
        print(f"{r['rank']:>3}  {r['score']:.4f}  {r['id']}  ({r['modality']})  {text}{image}")
    return 0
