"""`umr serve`: the HTTP API and search page for an index (FastAPI + uvicorn, loopback by default)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from umr.cli.argtypes import port, positive_int
from umr.errors import UmrError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve an index over HTTP (API + search page)",
        description="Serve an index: POST /embed /search /rerank, GET /items/{did} /health, the OpenAI-compatible "
        "POST /v1/embeddings and GET /v1/models, the search page at / and the API docs at /docs. Queries are "
        "embedded with the model the index was built with; concurrent requests are batched into one model call. "
        "Needs the serve extra: pip install 'umr[serve]'.",
        epilog="example: umr serve --index runs/demo --model tiny:gme --port 8000   (then open http://127.0.0.1:8000)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", required=True, type=Path, help="job directory from `umr index build` (or its index/)")
    p.add_argument("--model", default=None,
                   help="model to embed queries (default: the one recorded in the index; must match it)")
    p.add_argument("--device", default=None, help="cpu, cuda … (default: cuda if available)")
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"],
                   help="model (and re-ranker) dtype (default: bf16 on GPU, fp32 on CPU; an index built in one "
                   "serves in another)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only); any other needs --token")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without --token (anyone who can reach it can query)")
    p.add_argument("--port", type=port, default=8000, help="port (default: 8000)")
    p.add_argument("--token", default=os.environ.get("UMR_SERVE_TOKEN"),
                   help="require 'Authorization: Bearer TOKEN' on the API (default: $UMR_SERVE_TOKEN, else none)")
    p.add_argument("--reranker", default=None,
                   help="re-ranker for /rerank and search's rerank option: an MLLM (tiny:gme, a folder, a hub id; "
                   "umr.rerank's P(Yes)) or 'py:module:Class' (any object with score(query, candidates))")
    p.add_argument("--fuse-weight", type=float, default=1.0, metavar="W",
                   help="re-ranked score = cos + W · re-ranker score (default: 1.0)")
    p.add_argument("--rerank-depth", type=int, default=50, metavar="N",
                   help="how many top results a search re-ranks by default (default: 50)")
    p.add_argument("--max-batch", type=int, default=32, help="most items per batched model call (default: 32)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long a request waits for others to share its model call (default: 5)")
    p.add_argument("--no-batching", action="store_true", help="one model call per request (for comparison)")
    p.add_argument("--max-request-mb", type=float, default=10.0, help="largest request body in MiB (default: 10)")
    p.add_argument("--max-image-pixels", type=int, default=16_000_000,
                   help="largest image, width × height (default: 16,000,000)")
    p.add_argument("--max-images", type=int, default=16, help="most images in one request (default: 16)")
    p.add_argument("--max-request-pixels", type=int, default=32_000_000,
                   help="most decoded pixels of one request's images together (default: 32,000,000)")
    p.add_argument("--max-inflight-pixels", type=int, default=64_000_000,
                   help="most decoded pixels of all requests at once; past it requests wait, then get 429 "
                   "(default: 64,000,000, about 0.2 GB as RGB)")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="S",
                   help="seconds a request body may take to arrive (408 after; default: 30)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                   help="seconds a client may take to send a complete request head (closed after; default: 10)")
    p.add_argument("--max-connections", type=positive_int, default=1000, metavar="N",
                   help="open connections and running requests at once (503 past it; default: 1000)")
    p.add_argument("--cors-origin", action="append", default=[],
                   help="allow browser pages from this origin to call the API (repeatable; default: CORS off)")
    p.add_argument("--served-model-name", default=None, metavar="NAME",
                   help="the model's id on /v1/models, which /v1/embeddings requests name (default: --model, or the "
                   "index's recorded model; a path by its last folder)")
    p.add_argument("--allow-image-urls", action="store_true",
                   help="let /v1/embeddings fetch http(s) image URLs (default: data: URLs only; the server then "
                   "requests whatever URL a client names)")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="CPU threads for the model (default: torch's choice); 1 leaves cores to the HTTP side")
    p.add_argument("--log-level", default="info", help="uvicorn log level (default: info)")
    p.set_defaults(func=run)


def load_reranker(spec: str | None, device: str | None = None, dtype: str | None = None) -> Any:
    """'py:module:Class' → an instance; a model name → umr.rerank's MLLM Reranker; None → none (501 answers)."""
    if spec is None:
        return None
    if not spec.startswith("py:"):
        from umr.rerank.prompted import Reranker

        return Reranker(spec, device=device, dtype=dtype)
    from umr.models.registry import import_object

    return import_object(spec, "--reranker")()


def build_app(args: argparse.Namespace) -> Any:
    """Load index + model the way `umr search` does and return the FastAPI app (also used by tests)."""
    try:
        from umr.serve.app import ServeSettings, create_app
    except ImportError as exc:
        raise UmrError(f"umr serve needs the serve extra ({exc.name} is missing): pip install 'umr[serve]'") from exc
    from umr.cli.cmd_search import find_index_dir
    from umr.index import load_index
    from umr.index.portable import check_model
    from umr.models.registry import load_embedder
    from umr.serve.inputs import public_description

    directory = find_index_dir(args.index)
    index = load_index(directory)
    spec = args.model or index.info.get("model_spec")
    if not spec:
        raise UmrError(f"{directory} does not record which model built it; pass --model")
    embedder = load_embedder(spec, device=args.device, dtype=args.dtype)
    check_model(embedder.describe(), index.info, directory)
    settings = ServeSettings(token=args.token or None, batching=not args.no_batching, max_batch=args.max_batch,
                             max_wait_ms=args.max_wait_ms, max_request_bytes=int(args.max_request_mb * 1024 * 1024),
                             max_image_pixels=args.max_image_pixels, cors_origins=list(args.cors_origin),
                             rerank_weight=args.fuse_weight, rerank_depth=args.rerank_depth, index_dir=directory,
                             max_images=args.max_images, max_request_pixels=args.max_request_pixels,
                             max_inflight_pixels=args.max_inflight_pixels, body_timeout_s=args.body_timeout,
                             model_name=args.served_model_name or public_description({"id": spec})["id"],
                             allow_image_urls=args.allow_image_urls)
    return create_app(index, embedder, settings, reranker=load_reranker(args.reranker, args.device, args.dtype))


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_exposure(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to open the API beyond this machine without a token: /embed and /search cost CPU and memory, and
    /items shows the indexed texts and images."""
    if host not in LOOPBACK and not token and not insecure:
        raise UmrError(f"--host {host} opens the API to other machines, but no --token is set; pass --token "
                       "(or $UMR_SERVE_TOKEN), or --insecure to serve without one")


def run(args: argparse.Namespace) -> int:
    check_exposure(args.host, args.token, args.insecure)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    app = build_app(args)
    import uvicorn

    if args.host not in LOOPBACK and not args.token:
        print(f"umr serve: warning: listening on {args.host} without --token (--insecure); anyone who can reach it "
              "can query")
    print(f"umr serve: http://{args.host}:{args.port}/  (API docs at /docs)")
    from umr.serve.connection_limits import uvicorn_limits

    if args.header_timeout <= 0:
        raise UmrError(f"--header-timeout must be > 0 seconds, got {args.header_timeout}")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                **uvicorn_limits(args.header_timeout, args.max_connections))
    return 0
