"""The HTTP service: `create_app(index, embedder, settings)` → a FastAPI app.

Endpoints: POST /embed, POST /search, POST /rerank, GET /items/{did}, GET /items/{did}/thumbnail, GET /health,
the search page at / (static files served from this package: no CDN), OpenAPI docs at /docs.

Threads: the model runs in one thread fed by the `Batcher`; the index and thumbnails in another (FAISS and the
SQLite records are not shared across threads); the event loop only parses, validates and answers.
Errors: every 4xx/5xx body is {"error": code, "detail": message}; tracebacks go to the server log only.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Protocol, runtime_checkable

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from umr.index.base import Index, normalise_modalities
from umr.items import Item, ItemError
from umr.models.base import Embedder
from umr.rerank.fusion import fused_order
from umr.serve import schemas as S
from umr.serve.batching import Batcher
from umr.serve.embed_route import add_embed_route
from umr.serve.inputs import (
    ApiError,
    BodyLimit,
    data_url,
    make_item,
    public_description,
    record_image_path,
    thumbnail_jpeg,
    validation_message,
)
from umr.serve.limits import ItemSpec, PixelBudget, QueueGate, admitted

log = logging.getLogger("umr.serve")
STATIC = Path(__file__).parent / "static"
PAGE_CSP = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
# module level: annotations are strings here (future import), resolved against the module's globals
_BEARER = HTTPBearer(auto_error=False, description="required when the server was started with --token")

DEFAULT_INSTRUCTIONS = [
    "Retrieve an image that matches the given caption.",
    "Retrieve a caption that describes the given image.",
    "Retrieve a passage that answers the given question.",
    "Retrieve an image similar to the given image.",
    "Retrieve an image that matches the given image after applying the described change.",
    "Retrieve the best match.",
]


@runtime_checkable
class Scorer(Protocol):
    """What /rerank and search's `rerank` need: higher score = more relevant (e.g. an MLLM's P(Yes))."""

    def score(self, query: Item, candidates: list[Item]) -> list[float]: ...


@dataclass
class ServeSettings:
    """Server settings; each limit protects the server from one kind of oversized or hostile request."""

    #: bearer token required on /embed /search /rerank /items; None = open (bind to loopback then)
    token: str | None = None
    #: batching: most items per model call, and how long the first request waits for company
    batching: bool = True
    max_batch: int = 32
    max_wait_ms: float = 5.0
    #: whole request body, bytes (base64 images are ~4/3 of the file)
    max_request_bytes: int = 10 * 1024 * 1024
    #: width × height of one image; checked from the header before decoding (decompression bombs)
    max_image_pixels: int = 16_000_000
    max_items: int = 64
    #: work one request may cause (umr.serve.limits): images, and their decoded pixels in all (413 past either)
    max_images: int = 16
    max_request_pixels: int = 32_000_000
    #: decoded pixels of all requests at once (~3 bytes each, several times that inside an image processor);
    #: past it a request waits up to queue_wait_s, then gets 429
    max_inflight_pixels: int = 64_000_000
    queue_wait_s: float = 5.0
    #: items waiting for the model, all requests together (429 past it)
    max_queued_items: int = 1024
    #: seconds for a whole request body to arrive (408 after)
    body_timeout_s: float | None = 30.0
    max_text_chars: int = 8000
    max_k: int = 100
    #: how many top results /search re-ranks by default, and the weight w of fused = cos + w·rerank
    rerank_depth: int = 50
    rerank_weight: float = 1.0
    max_rerank_candidates: int = 200
    thumbnail_px: int = 192
    #: browser origins allowed by CORS; empty = CORS off (only same-origin pages can call the API)
    cors_origins: list[str] = field(default_factory=list)
    instructions: list[str] = field(default_factory=lambda: list(DEFAULT_INSTRUCTIONS))
    #: where the index lives, to resolve relative image paths recorded in it
    index_dir: Path | None = None


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _encode_fn(embedder: Embedder) -> Any:
    def encode(role: str, items: list[Item]) -> np.ndarray:
        # items already carry their own instruction; encode_queries(instruction=None) keeps it
        if role == "candidate":
            return embedder.encode_corpus(items, batch_size=len(items))
        return embedder.encode_queries(items, batch_size=len(items))
    return encode


def create_app(index: Index, embedder: Embedder, settings: ServeSettings | None = None,
               reranker: Scorer | None = None) -> FastAPI:
    """The FastAPI app serving `index`, embedding queries with `embedder` (the model the index was built with)."""
    settings = settings or ServeSettings()
    if index.dim != embedder.dim:
        raise ValueError(f"index holds {index.dim}-d vectors but the model makes {embedder.dim}-d ones; serve the "
                         "index with the model it was built with")
    if reranker is not None and not isinstance(reranker, Scorer):
        raise TypeError("reranker must have a score(query, candidates) -> list[float] method")
    batcher = Batcher(_encode_fn(embedder), settings.max_batch, settings.max_wait_ms, settings.batching)
    index_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="umr-index")
    rerank_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="umr-rerank")
    model_desc = embedder.describe()
    public_desc = public_description(model_desc)
    # a request's own limit can never be over the server-wide one, or such a request would wait forever
    request_pixels = max(settings.max_request_pixels, settings.max_image_pixels)
    settings = replace(settings, max_request_pixels=request_pixels,
                       max_inflight_pixels=max(settings.max_inflight_pixels, request_pixels))
    budget = PixelBudget(settings.max_inflight_pixels, settings.queue_wait_s)
    gate = QueueGate(settings.max_queued_items)
    image_root = index.info.get("image_root")

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        yield
        await batcher.close()

    app = FastAPI(title="umr", version="0.1.0", lifespan=lifespan,
                  description="Universal multimodal retrieval: embed text, images or both, search an index, re-rank. "
                  "Images are sent as base64 (or uploaded to /embed as multipart); file paths are never read.",
                  responses={code: {"model": S.ErrorBody} for code in (400, 401, 413, 422)})
    app.state.settings, app.state.batcher, app.state.index, app.state.embedder = settings, batcher, index, embedder
    app.state.budget, app.state.gate = budget, gate
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, timeout_s=settings.body_timeout_s)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])

    # -- errors: JSON, no tracebacks ---------------------------------------------------------------------------
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code,
                                                                                              "http_error")
        detail = str(exc.detail)
        if exc.status_code == 400 and code == "http_error":  # FastAPI could not decode the body at all
            code, detail = "invalid_body", "the request body could not be decoded; send UTF-8 JSON"
        return _error(exc.status_code, code, detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", validation_message(list(exc.errors())))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "internal server error; the server log has the details")

    # -- auth ----------------------------------------------------------------------------------------------------
    def token_ok(creds: HTTPAuthorizationCredentials | None) -> bool:
        return settings.token is not None and creds is not None and \
            hmac.compare_digest(creds.credentials.encode(), settings.token.encode())

    async def authorised(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if settings.token is None:
            return
        if creds is None:
            raise ApiError(401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'",
                           {"WWW-Authenticate": "Bearer"})
        if not token_ok(creds):
            raise ApiError(401, "unauthorized", "wrong bearer token", {"WWW-Authenticate": "Bearer"})

    auth = [Depends(authorised)]

    # -- helpers ---------------------------------------------------------------------------------------------
    async def embed(items: list[Item], role: str) -> np.ndarray:
        try:
            async with gate.enter(len(items)):
                return await batcher.submit(items, role)
        except ApiError:
            raise
        except ItemError as exc:
            raise ApiError(422, "invalid_item", str(exc)) from exc
        except Exception as exc:
            log.exception("model failed on a request of %d item(s)", len(items))
            raise ApiError(500, "model_error", f"the model failed on this request's item(s) ({type(exc).__name__});"
                           " other requests are unaffected") from exc

    async def in_index_thread(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(index_pool, fn, *args)

    @lru_cache(maxsize=4096)
    def thumb(did: str, image: str) -> bytes | None:
        path = record_image_path(image, settings.index_dir, image_root)
        try:
            return thumbnail_jpeg(path, settings.thumbnail_px) if path is not None else None
        except ItemError:
            log.warning("no thumbnail for %s: cannot read %s", did, path)
            return None

    def records_with_thumbs(ids: list[str], thumbnails: bool) -> list[tuple[dict[str, Any] | None, bytes | None]]:
        records = index.get(ids)
        return [(r, thumb(r["id"], r["image"]) if thumbnails and r and r.get("image") else None) for r in records]

    def candidate_items(cands: list[S.CandidateIn], given: dict[int, Item] | None = None) -> list[Item]:
        """Items for re-ranking: indexed ones by id, ad-hoc ones from their fields (`given`: already decoded)."""
        given = given or {}
        known = index.get([c.id for c in cands if c.id is not None and c.text is None and c.image is None])
        by_id = {r["id"]: r for r in known if r}
        out = []
        for i, c in enumerate(cands):
            where = f"body.candidates.{i}"
            if i in given:
                out.append(given[i])
            elif c.text is None and c.image is None:
                if c.id is None:
                    raise ApiError(422, "empty_item", f"{where}: give an indexed item's id, or text and/or image")
                rec = by_id.get(c.id)
                if rec is None:
                    raise ApiError(404, "unknown_item", f"{where}: no item {c.id!r} in the index")
                path = record_image_path(rec.get("image"), settings.index_dir, image_root)
                out.append(Item(text=rec.get("text"), image=str(path) if path else None, id=rec["id"]))
            else:
                out.append(make_item(c.text, c.image, None, where, settings.max_image_pixels,
                                     settings.max_text_chars, ident=c.id))
        return out

    async def run_reranker(query: Item, cands: list[Item]) -> list[float]:
        if reranker is None:
            raise ApiError(501, "rerank_not_configured", "no re-ranker is configured on this server; start it with "
                           "--reranker, or search without rerank")
        try:
            scores = await asyncio.get_running_loop().run_in_executor(rerank_pool, reranker.score, query, cands)
        except ItemError as exc:
            raise ApiError(422, "invalid_item", str(exc)) from exc
        except Exception as exc:
            log.exception("re-ranker failed")
            raise ApiError(500, "rerank_error",
                           f"the re-ranker failed on this request ({type(exc).__name__})") from exc
        scores = [float(s) for s in scores]
        if len(scores) != len(cands):
            raise ApiError(500, "rerank_error", f"the re-ranker returned {len(scores)} scores for {len(cands)} "
                           "candidates")
        return scores

    # -- endpoints -------------------------------------------------------------------------------------------
    @app.get("/health", response_model=S.Health, tags=["service"])
    async def health(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> S.Health:
        """Liveness and what this server holds (no token needed; the model's file path only with the token)."""
        return S.Health(status="ok", items=len(index), dim=index.dim, modalities=index.modality_counts(),
                        model=model_desc if token_ok(creds) else public_desc, auth=settings.token is not None,
                        rerank=reranker is not None, batching=batcher.settings(), instructions=settings.instructions,
                        limits={"max_request_bytes": settings.max_request_bytes, "max_k": settings.max_k,
                                "max_image_pixels": settings.max_image_pixels, "max_items": settings.max_items,
                                "max_images": settings.max_images, "max_request_pixels": settings.max_request_pixels})

    add_embed_route(app, auth, settings, embed, public_desc, embedder.dim, budget)

    @app.post("/search", response_model=S.SearchResponse, dependencies=auth, tags=["retrieval"])
    async def search(req: S.SearchRequest) -> S.SearchResponse:
        """Embed a text and/or image query with an instruction and return the k best indexed items."""
        t0 = time.perf_counter()
        if req.k > settings.max_k:
            raise ApiError(422, "invalid_request", f"body.k: {req.k} is over this server's limit of {settings.max_k}")
        try:
            modality = normalise_modalities(req.modality)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"body.modality: {exc}") from exc
        depth = max(req.k, req.rerank_depth or settings.rerank_depth) if req.rerank else req.k
        if req.rerank and reranker is None:
            await run_reranker(Item(text="-"), [])  # raises the 501 before any work is done
        async with admitted([ItemSpec(req.text, req.image, req.instruction, "body", "query")], settings,
                            budget) as (query,):
            vec = await embed([query], "query")
        t1 = time.perf_counter()

        def retrieve() -> tuple[list[tuple[float, str]], list[Any] | None, float]:
            scores, ids = index.search(vec, min(depth, settings.max_rerank_candidates), modality)
            found = [(float(s), str(i)) for s, i in zip(scores[0], ids[0], strict=True) if i is not None]
            searched = time.perf_counter()
            # without re-ranking the records are fetched in the same thread hop (one hop less per request)
            rows = None if req.rerank else records_with_thumbs([i for _, i in found[:req.k]], req.thumbnails)
            return found, rows, searched

        found, rows, t2 = await in_index_thread(retrieve)
        rerank_scores: list[float | None] = [None] * len(found)
        if req.rerank and found:
            cands = await in_index_thread(candidate_items, [S.CandidateIn(id=i) for _, i in found])
            rerank_scores = list(await run_reranker(query, cands))
            by_fused, fused_scores = fused_order([s for s, _ in found], rerank_scores, settings.rerank_weight)
            fused, order = fused_scores.tolist(), by_fused[:req.k].tolist()
        else:
            fused = [s for s, _ in found]
            order = list(range(min(req.k, len(found))))
        t3 = time.perf_counter()
        if rows is None:
            rows = await in_index_thread(records_with_thumbs, [found[j][1] for j in order], req.thumbnails)
        hits = []
        for rank, (j, (rec, jpeg)) in enumerate(zip(order, rows, strict=True), 1):
            rec = rec or {"id": found[j][1], "modality": "text"}
            hits.append(S.Hit(rank=rank, id=rec["id"], score=fused[j], retrieval_score=found[j][0],
                              rerank_score=rerank_scores[j], modality=rec["modality"], text=rec.get("text"),
                              has_image=bool(rec.get("image")), thumbnail=data_url(jpeg) if jpeg else None))
        t4 = time.perf_counter()
        ms = {"embed": (t1 - t0) * 1e3, "search": (t2 - t1) * 1e3, "rerank": (t3 - t2) * 1e3,
              "records": (t4 - t3) * 1e3}
        return S.SearchResponse(k=req.k, modality=list(modality) if modality else None, reranked=req.rerank,
                                results=hits, latency_ms=(t4 - t0) * 1e3, timings_ms=ms)

    @app.post("/rerank", response_model=S.RerankResponse, dependencies=auth, tags=["retrieval"],
              responses={404: {"model": S.ErrorBody, "description": "a candidate id is not in the index"},
                         501: {"model": S.ErrorBody, "description": "no re-ranker configured"}})
    async def rerank(req: S.RerankRequest) -> S.RerankResponse:
        """Score candidates (indexed ids or ad-hoc items) against a query with the configured re-ranker."""
        t0 = time.perf_counter()
        if len(req.candidates) > settings.max_rerank_candidates:
            raise ApiError(422, "too_many_items", f"body.candidates: {len(req.candidates)} candidates, over the limit "
                           f"of {settings.max_rerank_candidates}")
        if reranker is None:
            await run_reranker(Item(text="-"), [])
        q = req.query
        specs = [ItemSpec(q.text, q.image, q.instruction, "body.query", "query")]
        # ad-hoc candidates are client images too: they count against the same limits as the query's
        adhoc = [i for i, c in enumerate(req.candidates) if c.image is not None]
        specs += [ItemSpec(req.candidates[i].text, req.candidates[i].image, None, f"body.candidates.{i}",
                           req.candidates[i].id) for i in adhoc]
        async with admitted(specs, settings, budget) as decoded:
            query, given = decoded[0], dict(zip(adhoc, decoded[1:], strict=True))
            cands = await in_index_thread(candidate_items, req.candidates, given)
            scores = await run_reranker(query, cands)
        order = sorted(range(len(scores)), key=lambda j: -scores[j])
        ranking = [S.RerankScore(index=j, id=req.candidates[j].id, score=scores[j]) for j in order]
        return S.RerankResponse(scores=scores, ranking=ranking, latency_ms=(time.perf_counter() - t0) * 1e3)

    @app.get("/items/{did:path}/thumbnail", dependencies=auth, tags=["items"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"model": S.ErrorBody}})
    async def item_thumbnail(did: str) -> Response:
        """A small JPEG of an indexed item's image."""
        (rec, jpeg), = await in_index_thread(records_with_thumbs, [did], True)
        if rec is None:
            raise ApiError(404, "unknown_item", f"no item {did!r} in the index")
        if jpeg is None:
            raise ApiError(404, "no_image", f"item {did!r} has no readable image")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.get("/items/{did:path}", response_model=S.ItemOut, dependencies=auth, tags=["items"],
             responses={404: {"model": S.ErrorBody}})
    async def item(did: str) -> S.ItemOut:
        """An indexed item's metadata and thumbnail (the server's file paths are not revealed)."""
        (rec, jpeg), = await in_index_thread(records_with_thumbs, [did], True)
        if rec is None:
            raise ApiError(404, "unknown_item", f"no item {did!r} in the index")
        return S.ItemOut(id=rec["id"], modality=rec["modality"], text=rec.get("text"),
                         has_image=bool(rec.get("image")), thumbnail=data_url(jpeg) if jpeg else None)

    # -- the page ----------------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        # The policy makes "no CDN" enforced, not just true: the browser loads nothing from another origin.
        return FileResponse(STATIC / "index.html", media_type="text/html",
                            headers={"Content-Security-Policy": PAGE_CSP})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
