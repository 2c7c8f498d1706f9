"""What every route of the service shares: its settings and `ServeState`, the one object the routers work on
(index, model, re-ranker, the batcher, the worker threads, the request limits), with the helpers routes call.

Threads: the model runs in one thread fed by the `Batcher`; the index and thumbnails in another (FAISS and the
SQLite records are not shared across threads); the re-ranker in a third; the event loop only parses, validates
and answers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Protocol, runtime_checkable

import numpy as np
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from umr.index.base import Index
from umr.index.portable import record_image_path
from umr.items import Item, ItemError
from umr.models.base import Embedder
from umr.serve import schemas as S
from umr.serve.batching import Batcher
from umr.serve.inputs import ApiError, check_text, make_item, public_description, thumbnail_jpeg
from umr.serve.limits import PixelBudget, QueueGate

log = logging.getLogger("umr.serve")
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
#: an indexed item's record (None: not in the index) and its thumbnail JPEG (None: no readable image)
Row = tuple[dict[str, Any] | None, bytes | None]


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
    #: the model's id on /v1/models, which /v1/embeddings requests must name (default: the embedder's name)
    model_name: str | None = None
    #: /v1/embeddings may fetch http(s) image URLs (off: data: URLs only; on, the server makes requests that
    #: clients choose, so turn it on only where those cannot reach anything private)
    allow_image_urls: bool = False


class ServeState:
    """The served index and model and everything requests share; `create_app` builds one, routes get it from
    `request.app.state.serve` (the `get_state` dependency)."""

    def __init__(self, index: Index, embedder: Embedder, settings: ServeSettings,
                 reranker: Scorer | None = None) -> None:
        self.index, self.embedder, self.settings, self.reranker = index, embedder, settings, reranker
        self.batcher = Batcher(self._encode, settings.max_batch, settings.max_wait_ms, settings.batching)
        self.index_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="umr-index")
        self.rerank_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="umr-rerank")
        self.model_desc = embedder.describe()
        self.public_desc = public_description(self.model_desc)
        self.budget = PixelBudget(settings.max_inflight_pixels, settings.queue_wait_s)
        self.gate = QueueGate(settings.max_queued_items)
        self.image_root = index.info.get("image_root")
        # per server, not per process: two apps in one process (tests) must not share thumbnails
        self.thumb = lru_cache(maxsize=4096)(self._thumb)

    def _encode(self, role: str, items: list[Item]) -> np.ndarray:
        # the API's "candidate" is the Embedder's "document"; queries keep the instruction each item carries
        return self.embedder.encode_role("document" if role == "candidate" else "query", items,
                                         batch_size=len(items))

    def token_ok(self, token: str | None) -> bool:
        expected = self.settings.token
        return expected is not None and token is not None and hmac.compare_digest(token.encode(), expected.encode())

    async def embed(self, items: list[Item], role: str) -> np.ndarray:
        """Batched model call; a bad item is a 422, a model crash a 500 for this request only."""
        for i, item in enumerate(items):  # screened here: in a shared batch it would fail other requests too
            if (problem := self.embedder.text_problem(item)) is not None:
                raise ApiError(422, "invalid_text", f"item {i}: {problem}")
        try:
            async with self.gate.enter(len(items)):
                return await self.batcher.submit(items, role)
        except ApiError:
            raise
        except ItemError as exc:
            raise ApiError(422, "invalid_item", str(exc)) from exc
        except Exception as exc:
            log.exception("model failed on a request of %d item(s)", len(items))
            raise ApiError(500, "model_error", f"the model failed on this request's item(s) ({type(exc).__name__});"
                           " other requests are unaffected") from exc

    async def in_index_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.index_pool, fn, *args)

    def _thumb(self, did: str, image: str) -> bytes | None:
        path = record_image_path(image, self.settings.index_dir, self.image_root)
        try:
            return thumbnail_jpeg(path, self.settings.thumbnail_px) if path is not None else None
        except ItemError:
            log.warning("no thumbnail for %s: cannot read %s", did, path)
            return None

    def records_with_thumbs(self, ids: list[str], thumbnails: bool) -> list[Row]:
        records = self.index.get(ids)
        return [(r, self.thumb(r["id"], r["image"]) if thumbnails and r and r.get("image") else None) for r in records]

    def candidate_items(self, cands: list[S.CandidateIn], given: dict[int, Item] | None = None) -> list[Item]:
        """Items for re-ranking: indexed ones by id, ad-hoc ones from their fields (`given`: already decoded)."""
        given = given or {}
        for i, c in enumerate(cands):  # a lone surrogate in an id broke the SQLite lookup (a 500)
            check_text(c.id, f"body.candidates.{i}.id", self.settings.max_text_chars)
        known = self.index.get([c.id for c in cands if c.id is not None and c.text is None and c.image is None])
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
                path = record_image_path(rec.get("image"), self.settings.index_dir, self.image_root)
                out.append(Item(text=rec.get("text"), image=str(path) if path else None, id=rec["id"]))
            else:
                out.append(make_item(c.text, c.image, None, where, self.settings.max_image_pixels,
                                     self.settings.max_text_chars, ident=c.id))
        return out

    def require_reranker(self) -> Scorer:
        """The re-ranker, or the 501 a request gets before any work is done."""
        if self.reranker is None:
            raise ApiError(501, "rerank_not_configured", "no re-ranker is configured on this server; start it with "
                           "--reranker, or search without rerank")
        return self.reranker

    async def run_reranker(self, query: Item, cands: list[Item]) -> list[float]:
        reranker = self.require_reranker()
        try:
            scores = await asyncio.get_running_loop().run_in_executor(self.rerank_pool, reranker.score, query,
                                                                      cands)
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


def get_state(request: Request) -> ServeState:
    """FastAPI dependency: the state of the app serving this request."""
    return request.app.state.serve


State = Annotated[ServeState, Depends(get_state)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


async def authorised(state: State, creds: Credentials) -> None:
    """Dependency of every route but /health and the page: the bearer token, when the server has one."""
    if state.settings.token is None:
        return
    if creds is None:
        raise ApiError(401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'",
                       {"WWW-Authenticate": "Bearer"})
    if not state.token_ok(creds.credentials):
        raise ApiError(401, "unauthorized", "wrong bearer token", {"WWW-Authenticate": "Bearer"})
