"""POST /v1/embeddings and GET /v1/models in OpenAI's format, so the `openai` client and every framework's
OpenAI-embeddings class (LangChain's `OpenAIEmbeddings`, LlamaIndex's `OpenAIEmbedding`) work against `umr serve`.

The embedding path is /embed's: the same item checks, request limits, pixel budget, batcher and token auth; only
the dialect differs. By default an input is embedded as a document, as `umr embed` embeds it; `role: "query"`
and `instruction` (umr's extra fields) embed it as /search embeds a query. Errors use OpenAI's body
({"error": {"message", "type", "param", "code"}}, see `umr.serve.inputs.error_body`).
"""

from __future__ import annotations

import base64
import copy
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter, ValidationError

from umr.serve import openai_schemas as O
from umr.serve.image_urls import image_source
from umr.serve.inputs import ApiError, validation_message
from umr.serve.limits import ItemSpec, admitted
from umr.serve.state import ServeState, State, authorised

_ERRORS = {code: {"model": O.OpenAIErrorBody} for code in (400, 401, 404, 408, 413, 422, 429, 500)}
router = APIRouter(prefix="/v1", dependencies=[Depends(authorised)], tags=["openai-compatible"], responses=_ERRORS)
_PARTS = TypeAdapter(list[O.ContentPart])
_STARTED = int(time.time())


def served_model_id(state: ServeState) -> str:
    return state.settings.model_name or str(state.public_desc.get("name") or state.embedder.name)


@router.get("/models", response_model=O.ModelList)
async def list_models(state: State) -> O.ModelList:
    """The one model this server embeds with (its id is what /v1/embeddings requests name)."""
    return O.ModelList(data=[O.ModelCard(id=served_model_id(state), created=_STARTED, dim=state.embedder.dim)])


@router.post("/embeddings", response_model=O.EmbeddingResponse)
async def create_embeddings(req: O.EmbeddingRequest, request: Request, state: State) -> O.EmbeddingResponse:
    """Embed `input` (strings, or lists of text / image_url parts) or one `messages` item; vectors are
    L2-normalised, in input order, as floats or base64 float32."""
    settings, model = state.settings, served_model_id(state)
    if req.model is not None and req.model != model:
        raise ApiError(404, "model_not_found", f"body.model: this server embeds with {model!r}, not {req.model!r}; "
                       "GET /v1/models lists it")
    if req.dimensions is not None and req.dimensions != state.embedder.dim:
        raise ApiError(422, "unsupported_dimensions", f"body.dimensions: {model} makes {state.embedder.dim}-d "
                       f"vectors and does not shorten them; omit dimensions or send {state.embedder.dim}")
    role = _role(req)
    specs = await _specs(req, settings)
    async with admitted(specs, settings, state.budget) as items:
        vecs = await state.embed(items, role)
    tokens = _token_counter(request, state).count([t for s in specs for t in (s.text, s.instruction) if t])
    return O.EmbeddingResponse(data=[O.EmbeddingData(index=i, embedding=_encode(v, req.encoding_format))
                                     for i, v in enumerate(vecs)],
                               model=model, usage=O.Usage(prompt_tokens=tokens, total_tokens=tokens))


def _role(req: O.EmbeddingRequest) -> str:
    """'query' or 'candidate' (the /embed API's names; State maps 'candidate' to the Embedder's 'document'):
    documents carry no instruction, as every recipe wants."""
    has_instruction = req.instruction is not None or any(m.role == "system" for m in req.messages or [])
    role = req.role or ("query" if has_instruction else "document")
    if role != "query" and has_instruction:
        raise ApiError(422, "invalid_request", f"body.role: {role!r} inputs are embedded without an instruction; "
                       "send role 'query' with an instruction (or a system message), or drop the instruction")
    return "query" if role == "query" else "candidate"


async def _specs(req: O.EmbeddingRequest, settings: Any) -> list[ItemSpec]:
    if (req.input is None) == (req.messages is None):
        raise ApiError(422, "invalid_request", "body: give either input (strings or content-part lists) or messages")
    if req.messages is not None:
        return [await _from_messages(req.messages, req.instruction, settings)]
    inputs = [req.input] if isinstance(req.input, str) else req.input
    if not inputs:
        raise ApiError(422, "invalid_request", "body.input: empty list; send at least one string")
    if len(inputs) > settings.max_items:
        raise ApiError(422, "too_many_items", f"body.input: {len(inputs)} inputs, over the limit of "
                       f"{settings.max_items}; split the request (LangChain: chunk_size={settings.max_items})")
    return [await _from_input(value, f"body.input.{i}", req.instruction, settings) for i, value in enumerate(inputs)]


async def _from_input(value: Any, field: str, instruction: str | None, settings: Any) -> ItemSpec:
    if isinstance(value, str):
        return ItemSpec(value, None, instruction, field)
    if isinstance(value, int) or (isinstance(value, list) and value and all(isinstance(v, int) for v in value)):
        raise ApiError(422, "invalid_request", f"{field}: token ids are not accepted (umr tokenizes with its own "
                       "model); send text. LangChain's OpenAIEmbeddings: set check_embedding_ctx_length=False")
    if not isinstance(value, list):
        raise ApiError(422, "invalid_request", f"{field}: must be a string or a list of content parts")
    try:
        parts = _PARTS.validate_python(value)
    except ValidationError as exc:
        errors = [dict(e, loc=(*field.split("."), *e.get("loc", ()))) for e in exc.errors()]
        raise ApiError(422, "invalid_request", validation_message(errors)) from exc
    text, image = await _parts(parts, field, settings)
    return ItemSpec(text, image, instruction, field)


async def _from_messages(messages: list[O.Message], instruction: str | None, settings: Any) -> ItemSpec:
    """vLLM's multimodal form: the user messages' parts make one item; a system message is its instruction."""
    texts, image, system = [], None, []
    for i, message in enumerate(messages):
        field = f"body.messages.{i}.content"
        parts = [O.TextPart(type="text", text=message.content)] if isinstance(message.content, str) \
            else message.content
        text, found = await _parts(parts, field, settings)
        if message.role == "system":
            if found is not None:
                raise ApiError(422, "invalid_request", f"{field}: a system message holds the instruction (text only)")
            system.append(text or "")
            continue
        if found is not None and image is not None:
            raise ApiError(422, "too_many_images", f"{field}: one image per item; send several items as input "
                           "elements instead")
        image = found if found is not None else image
        if text:
            texts.append(text)
    if system and instruction is not None:
        raise ApiError(422, "invalid_request", "body.instruction: give the instruction once, as a system message or "
                       "as instruction")
    return ItemSpec("\n".join(texts) or None, image, "\n".join(system) if system else instruction, "body.messages")


async def _parts(parts: list[Any], field: str, settings: Any) -> tuple[str | None, bytes | None]:
    """One item's text (the text parts, joined by newlines) and its image (at most one image part)."""
    texts, image = [], None
    for j, part in enumerate(parts):
        if isinstance(part, O.TextPart):
            texts.append(part.text)
        elif image is not None:
            raise ApiError(422, "too_many_images", f"{field}.{j}: one image per item (umr items hold one image)")
        else:
            image = await image_source(part.image_url.url, f"{field}.{j}.image_url.url", settings)
    return ("\n".join(texts) if texts else None), image


def _encode(vec: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # what the openai client asks for by default and decodes with numpy
        return base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode("ascii")
    return vec.tolist()


class TokenCounter:
    """`usage` from the served model's tokenizer (a copy: the model thread tokenizes with the original, and a
    fast tokenizer must not be used by two threads at once); whitespace words for a model without one."""

    def __init__(self, embedder: Any) -> None:
        tokenizer = getattr(embedder, "tokenizer", None) or getattr(getattr(embedder, "st", None), "tokenizer", None)
        self.tokenizer = copy.deepcopy(tokenizer) if callable(tokenizer) else None

    def count(self, texts: list[str]) -> int:
        if not texts:
            return 0
        if self.tokenizer is None:
            return sum(len(t.split()) for t in texts)
        return sum(len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"])


def _token_counter(request: Request, state: ServeState) -> TokenCounter:
    counter = getattr(request.app.state, "token_counter", None)
    if counter is None:  # built on first use: servers that never see /v1/embeddings never copy the tokenizer
        counter = request.app.state.token_counter = TokenCounter(state.embedder)
    return counter
