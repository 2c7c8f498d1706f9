"""The service's endpoints as routers over one `ServeState` (POST /embed is in embed_route.py):

    health_router     GET /health (no token needed)
    retrieval_router  POST /search, POST /rerank
    items_router      GET /items/{did}, GET /items/{did}/thumbnail
    page_router       the search page at / (static, no token needed)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response

from umr.index.base import normalise_modalities
from umr.rerank.fusion import fused_order
from umr.serve import schemas as S
from umr.serve.inputs import ApiError, data_url
from umr.serve.limits import ItemSpec, admitted
from umr.serve.state import Credentials, State, authorised

STATIC = Path(__file__).parent / "static"
PAGE_CSP = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

health_router = APIRouter()
retrieval_router = APIRouter(dependencies=[Depends(authorised)], tags=["retrieval"])
items_router = APIRouter(dependencies=[Depends(authorised)], tags=["items"])
page_router = APIRouter()


@health_router.get("/health", response_model=S.Health, tags=["service"])
async def health(state: State, creds: Credentials) -> S.Health:
    """Liveness and what this server holds (no token needed; the model's file path only with the token)."""
    settings, index = state.settings, state.index
    return S.Health(status="ok", items=len(index), dim=index.dim, modalities=index.modality_counts(),
                    model=state.model_desc if creds and state.token_ok(creds.credentials) else state.public_desc,
                    auth=settings.token is not None, rerank=state.reranker is not None,
                    batching=state.batcher.settings(), instructions=settings.instructions,
                    limits={"max_request_bytes": settings.max_request_bytes, "max_k": settings.max_k,
                            "max_image_pixels": settings.max_image_pixels, "max_items": settings.max_items,
                            "max_images": settings.max_images, "max_request_pixels": settings.max_request_pixels})


@page_router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    # The policy makes "no CDN" enforced, not just true: the browser loads nothing from another origin.
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Content-Security-Policy": PAGE_CSP})


@retrieval_router.post("/search", response_model=S.SearchResponse)
async def search(req: S.SearchRequest, state: State) -> S.SearchResponse:
    """Embed a text and/or image query with an instruction and return the k best indexed items."""
    t0 = time.perf_counter()
    settings = state.settings
    if req.k > settings.max_k:
        raise ApiError(422, "invalid_request", f"body.k: {req.k} is over this server's limit of {settings.max_k}")
    try:
        modality = normalise_modalities(req.modality)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"body.modality: {exc}") from exc
    depth = max(req.k, req.rerank_depth or settings.rerank_depth) if req.rerank else req.k
    if req.rerank:
        state.require_reranker()
    async with admitted([ItemSpec(req.text, req.image, req.instruction, "body", "query")], settings,
                        state.budget) as (query,):
        vec = await state.embed([query], "query")
    t1 = time.perf_counter()

    def retrieve() -> tuple[list[tuple[float, str]], list[Any] | None, float]:
        scores, ids = state.index.search(vec, min(depth, settings.max_rerank_candidates), modality)
        found = [(float(s), str(i)) for s, i in zip(scores[0], ids[0], strict=True) if i is not None]
        searched = time.perf_counter()
        # without re-ranking the records are fetched in the same thread hop (one hop less per request)
        rows = None if req.rerank else state.records_with_thumbs([i for _, i in found[:req.k]], req.thumbnails)
        return found, rows, searched

    found, rows, t2 = await state.in_index_thread(retrieve)
    rerank_scores: list[float | None] = [None] * len(found)
    if req.rerank and found:
        cands = await state.in_index_thread(state.candidate_items, [S.CandidateIn(id=i) for _, i in found])
        rerank_scores = list(await state.run_reranker(query, cands))
        by_fused, fused_scores = fused_order([s for s, _ in found], rerank_scores, settings.rerank_weight)
        fused, order = fused_scores.tolist(), by_fused[:req.k].tolist()
    else:
        fused = [s for s, _ in found]
        order = list(range(min(req.k, len(found))))
    t3 = time.perf_counter()
    if rows is None:
        rows = await state.in_index_thread(state.records_with_thumbs, [found[j][1] for j in order], req.thumbnails)
    hits = []
    for rank, (j, (rec, jpeg)) in enumerate(zip(order, rows, strict=True), 1):
        rec = rec or {"id": found[j][1], "modality": "text"}
        hits.append(S.Hit(rank=rank, id=rec["id"], score=fused[j], retrieval_score=found[j][0],
                          rerank_score=rerank_scores[j], modality=rec["modality"], text=rec.get("text"),
                          has_image=bool(rec.get("image")), thumbnail=data_url(jpeg) if jpeg else None))
    t4 = time.perf_counter()
    ms = {"embed": (t1 - t0) * 1e3, "search": (t2 - t1) * 1e3, "rerank": (t3 - t2) * 1e3, "records": (t4 - t3) * 1e3}
    return S.SearchResponse(k=req.k, modality=list(modality) if modality else None, reranked=req.rerank,
                            results=hits, latency_ms=(t4 - t0) * 1e3, timings_ms=ms)


@retrieval_router.post("/rerank", response_model=S.RerankResponse,
                responses={404: {"model": S.ErrorBody, "description": "a candidate id is not in the index"},
                           501: {"model": S.ErrorBody, "description": "no re-ranker configured"}})
async def rerank(req: S.RerankRequest, state: State) -> S.RerankResponse:
    """Score candidates (indexed ids or ad-hoc items) against a query with the configured re-ranker."""
    t0 = time.perf_counter()
    limit = state.settings.max_rerank_candidates
    if len(req.candidates) > limit:
        raise ApiError(422, "too_many_items", f"body.candidates: {len(req.candidates)} candidates, over the limit "
                       f"of {limit}")
    state.require_reranker()
    q = req.query
    specs = [ItemSpec(q.text, q.image, q.instruction, "body.query", "query")]
    # ad-hoc candidates are client images too: they count against the same limits as the query's
    adhoc = [i for i, c in enumerate(req.candidates) if c.image is not None]
    specs += [ItemSpec(req.candidates[i].text, req.candidates[i].image, None, f"body.candidates.{i}",
                       req.candidates[i].id) for i in adhoc]
    async with admitted(specs, state.settings, state.budget) as decoded:
        query, given = decoded[0], dict(zip(adhoc, decoded[1:], strict=True))
        cands = await state.in_index_thread(state.candidate_items, req.candidates, given)
        scores = await state.run_reranker(query, cands)
    order = sorted(range(len(scores)), key=lambda j: -scores[j])
    ranking = [S.RerankScore(index=j, id=req.candidates[j].id, score=scores[j]) for j in order]
    return S.RerankResponse(scores=scores, ranking=ranking, latency_ms=(time.perf_counter() - t0) * 1e3)


@items_router.get("/items/{did:path}/thumbnail", response_class=Response,
           responses={200: {"content": {"image/jpeg": {}}}, 404: {"model": S.ErrorBody}})
async def item_thumbnail(did: str, state: State) -> Response:
    """A small JPEG of an indexed item's image."""
    (rec, jpeg), = await state.in_index_thread(state.records_with_thumbs, [did], True)
    if rec is None:
        raise ApiError(404, "unknown_item", f"no item {did!r} in the index")
    if jpeg is None:
        raise ApiError(404, "no_image", f"item {did!r} has no readable image")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@items_router.get("/items/{did:path}", response_model=S.ItemOut, responses={404: {"model": S.ErrorBody}})
async def item(did: str, state: State) -> S.ItemOut:
    """An indexed item's metadata and thumbnail (the server's file paths are not revealed)."""
    (rec, jpeg), = await state.in_index_thread(state.records_with_thumbs, [did], True)
    if rec is None:
        raise ApiError(404, "unknown_item", f"no item {did!r} in the index")
    return S.ItemOut(id=rec["id"], modality=rec["modality"], text=rec.get("text"),
                     has_image=bool(rec.get("image")), thumbnail=data_url(jpeg) if jpeg else None)
