"""The HTTP service: `create_app(index, embedder, settings)` → a FastAPI app.

Endpoints: POST /embed, POST /search, POST /rerank, GET /items/{did}, GET /items/{did}/thumbnail, GET /health,
the OpenAI-compatible POST /v1/embeddings and GET /v1/models, the search page at / (static files served from this
package: no CDN), OpenAPI docs at /docs. They are routers (`umr.serve.routes`, `umr.serve.embed_route`,
`umr.serve.openai_route`) over one `ServeState` (`umr.serve.state`), which this builds.

Errors: every 4xx/5xx body is {"error": code, "detail": message} (on /v1/*, OpenAI's {"error": {"message", "type",
"code", ...}}); tracebacks go to the server log only.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import replace

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from umr.errors import UmrError
from umr.index.base import Index
from umr.models.base import Embedder
from umr.serve import embed_route, openai_route, routes
from umr.serve import schemas as S
from umr.serve.inputs import BodyLimit, error_body, validation_message
from umr.serve.state import DEFAULT_INSTRUCTIONS, Scorer, ServeSettings, ServeState

log = logging.getLogger("umr.serve")
__all__ = ["DEFAULT_INSTRUCTIONS", "Scorer", "ServeSettings", "ServeState", "create_app"]


def _error(request: Request, status: int, code: str, detail: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(request.url.path, status, code, detail), status_code=status, headers=headers)


def create_app(index: Index, embedder: Embedder, settings: ServeSettings | None = None,
               reranker: Scorer | None = None) -> FastAPI:
    """The FastAPI app serving `index`, embedding queries with `embedder` (the model the index was built with)."""
    settings = settings or ServeSettings()
    if index.dim != embedder.dim:
        raise UmrError(f"index holds {index.dim}-d vectors but the model makes {embedder.dim}-d ones; serve the "
                       "index with the model it was built with")
    if reranker is not None and not isinstance(reranker, Scorer):
        raise TypeError("reranker must have a score(query, candidates) -> list[float] method")
    # a request's own limit can never be over the server-wide one, or such a request would wait forever
    request_pixels = max(settings.max_request_pixels, settings.max_image_pixels)
    settings = replace(settings, max_request_pixels=request_pixels,
                       max_inflight_pixels=max(settings.max_inflight_pixels, request_pixels))
    state = ServeState(index, embedder, settings, reranker)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        yield
        await state.batcher.close()

    app = FastAPI(title="umr", version="0.1.0", lifespan=lifespan,
                  description="Universal multimodal retrieval: embed text, images or both, search an index, re-rank. "
                  "Images are sent as base64 (or uploaded to /embed as multipart); file paths are never read.",
                  responses={code: {"model": S.ErrorBody} for code in (400, 401, 413, 422)})
    app.state.serve = state
    # the parts callers look at (umr serve, tests), under the names they had before the state object
    for name in ("settings", "batcher", "index", "embedder", "budget", "gate"):
        setattr(app.state, name, getattr(state, name))
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, timeout_s=settings.body_timeout_s)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    _add_error_handlers(app)
    app.include_router(routes.health_router)
    app.include_router(embed_route.router)
    app.include_router(routes.retrieval_router)
    app.include_router(routes.items_router)
    app.include_router(openai_route.router)
    app.include_router(routes.page_router)
    embed_route.document_embed_body(app)
    app.mount("/static", StaticFiles(directory=routes.STATIC), name="static")
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """JSON error bodies with a stable code, never a traceback."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code,
                                                                                              "http_error")
        detail = str(exc.detail)
        if exc.status_code == 400 and code == "http_error":  # FastAPI could not decode the body at all
            code, detail = "invalid_body", "the request body could not be decoded; send UTF-8 JSON"
        return _error(request, exc.status_code, code, detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(request, 422, "invalid_request", validation_message(list(exc.errors())))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(request, 500, "internal_error", "internal server error; the server log has the details")
