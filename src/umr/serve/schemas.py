"""Request and response bodies of the HTTP API (pydantic), which also make up the OpenAPI spec at /docs.

Images travel as base64 strings (a `data:image/...;base64,` prefix is accepted), never as paths: the server
must not open a file a client names. Unknown fields are rejected so a typo fails loudly instead of being
silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: largest k a schema accepts; the server's own `max_k` setting may be lower
K_LIMIT = 1000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemIn(Strict):
    """One item to embed or score: text, an image (base64), or both."""

    text: str | None = Field(None, description="the item's text")
    image: str | None = Field(None, description="the image as base64 (optionally a data: URL); never a path")
    instruction: str | None = Field(None, description="task instruction (queries only)")


class EmbedRequest(Strict):
    items: list[ItemIn] = Field(..., min_length=1, description="items to embed, any mix of modalities")
    role: Literal["query", "candidate"] = Field(
        "query", description="queries get their instruction; candidates are embedded plainly")


class EmbedResponse(BaseModel):
    model: dict[str, Any] = Field(..., description="the embedder's settings (Embedder.describe())")
    dim: int
    embeddings: list[list[float]] = Field(..., description="L2-normalised vectors, one per item, in input order")


class SearchRequest(Strict):
    text: str | None = Field(None, description="query text")
    image: str | None = Field(None, description="query image as base64 (optionally a data: URL)")
    instruction: str | None = Field(None, description='task instruction, e.g. "Retrieve an image of the caption."')
    k: int = Field(10, ge=1, le=K_LIMIT, description="how many results")
    modality: str | list[str] | None = Field(
        None, description='keep only candidates of this modality: "text", "image", "image,text" (or a list)')
    rerank: bool = Field(False, description="re-score the top `rerank_depth` with the configured re-ranker")
    rerank_depth: int | None = Field(None, ge=1, le=K_LIMIT,
                                     description="candidates to re-rank (default: the server's setting, ≥ k)")
    thumbnails: bool = Field(False, description="include a small JPEG data: URL for each image result")


class Hit(BaseModel):
    rank: int
    id: str
    score: float = Field(..., description="the ranking score (fused when re-ranked)")
    retrieval_score: float = Field(..., description="inner product of query and candidate embeddings")
    rerank_score: float | None = None
    modality: str
    text: str | None = None
    has_image: bool
    thumbnail: str | None = Field(None, description="data: URL, when requested")


class SearchResponse(BaseModel):
    k: int
    modality: list[str] | None
    reranked: bool
    results: list[Hit]
    latency_ms: float = Field(..., description="server time for the whole request")
    timings_ms: dict[str, float] = Field(..., description="embed / search / rerank / thumbnails")


class CandidateIn(Strict):
    """A candidate to re-rank: an indexed item by `id`, or an ad-hoc item with text and/or image."""

    id: str | None = Field(None, description="did of an indexed item")
    text: str | None = None
    image: str | None = Field(None, description="base64 image (optionally a data: URL)")


class RerankRequest(Strict):
    query: ItemIn
    candidates: list[CandidateIn] = Field(..., min_length=1)


class RerankScore(BaseModel):
    index: int = Field(..., description="position in the request's candidate list")
    id: str | None
    score: float


class RerankResponse(BaseModel):
    scores: list[float] = Field(..., description="one score per candidate, in input order")
    ranking: list[RerankScore] = Field(..., description="candidates best first")
    latency_ms: float


class ItemOut(BaseModel):
    id: str
    modality: str
    text: str | None = None
    has_image: bool
    thumbnail: str | None = Field(None, description="JPEG data: URL of a small thumbnail")


class Health(BaseModel):
    status: Literal["ok"]
    items: int
    dim: int
    modalities: dict[str, int]
    model: dict[str, Any]
    auth: bool = Field(..., description="whether a bearer token is required")
    rerank: bool = Field(..., description="whether a re-ranker is configured")
    batching: dict[str, Any]
    instructions: list[str] = Field(..., description="suggested task instructions")
    limits: dict[str, int]


class ErrorBody(BaseModel):
    error: str = Field(..., description="a short machine-readable code")
    detail: str = Field(..., description="what is wrong and what to do")
