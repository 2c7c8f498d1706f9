"""POST /embed: a JSON body of items (base64 images), or one item as a multipart upload (text + image file).

One route with two body types, so it parses the body itself by Content-Type and documents both in OpenAPI.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from umr.serve import schemas as S
from umr.serve.inputs import ApiError, validation_message
from umr.serve.limits import ItemSpec, admitted
from umr.serve.state import State, authorised

MULTIPART_SCHEMA = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "the item's text"},
        "image": {"type": "string", "format": "binary", "description": "an image file"},
        "instruction": {"type": "string", "description": "task instruction (queries only)"},
        "role": {"type": "string", "enum": ["query", "candidate"], "default": "query"},
    },
    "additionalProperties": False,
}


_SCHEMA = S.EmbedRequest.model_json_schema(ref_template="#/components/schemas/{model}")
#: the JSON body's schemas, added to the app's OpenAPI by `document_embed_body` (the route parses its own body)
EXTRA_SCHEMAS = {**_SCHEMA.pop("$defs", {}), "EmbedRequest": _SCHEMA}
BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/EmbedRequest"}},
    "multipart/form-data": {"schema": MULTIPART_SCHEMA}}}}

router = APIRouter(dependencies=[Depends(authorised)], tags=["embedding"])


async def from_json(request: Request, settings: Any) -> tuple[list[ItemSpec], str]:
    raw = await request.body()
    try:
        req = S.EmbedRequest.model_validate_json(raw or b"null")
    except ValidationError as exc:
        errors = [dict(e, loc=("body", *e.get("loc", ()))) for e in exc.errors()]
        raise ApiError(422, "invalid_request", validation_message(errors)) from exc
    if len(req.items) > settings.max_items:
        raise ApiError(422, "too_many_items", f"body.items: {len(req.items)} items, over the limit of "
                       f"{settings.max_items}; split the request")
    return [ItemSpec(it.text, it.image, it.instruction, f"body.items.{i}") for i, it in enumerate(req.items)], \
        req.role


async def from_form(request: Request, settings: Any) -> tuple[list[ItemSpec], str]:
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=settings.max_request_bytes)
    except ApiError:
        raise
    except Exception as exc:  # python-multipart / starlette parse errors: the body is not valid multipart
        raise ApiError(422, "invalid_request", f"malformed multipart body ({type(exc).__name__}); send fields "
                       "text, instruction, role and a file field image") from exc
    unknown = sorted(set(form.keys()) - set(MULTIPART_SCHEMA["properties"]))
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown form field(s) {', '.join(map(repr, unknown))}; use text,"
                       " image, instruction, role")
    fields: dict[str, str | None] = {}
    for name in ("text", "instruction", "role"):
        value = form.get(name)
        if isinstance(value, UploadFile):
            raise ApiError(422, "invalid_request", f"form.{name}: must be a plain field, not a file")
        fields[name] = value
    role = fields["role"] or "query"
    if role not in ("query", "candidate"):
        raise ApiError(422, "invalid_request", f"form.role: must be 'query' or 'candidate', got {role!r}")
    image = form.get("image")
    data: bytes | None = None
    if image is not None:
        if not isinstance(image, UploadFile):
            raise ApiError(422, "invalid_image", "form.image: must be an uploaded file (multipart file field)")
        data = await image.read()
        if not data:
            raise ApiError(422, "invalid_image", "form.image: the uploaded file is empty")
    return [ItemSpec(fields["text"], data, fields["instruction"], "form")], role


@router.post("/embed", response_model=S.EmbedResponse, openapi_extra=BODY_DOC,
             responses={415: {"model": S.ErrorBody, "description": "not JSON or multipart"}})
async def embed_items(request: Request, state: State) -> S.EmbedResponse:
    """Embed items: JSON {"items": [{text, image (base64), instruction}], "role"} or a multipart upload of one
    item (fields text, instruction, role; file image). Returns L2-normalised vectors in input order."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        specs, role = await from_form(request, state.settings)
    elif ctype in ("application/json", ""):
        specs, role = await from_json(request, state.settings)
    else:
        raise ApiError(415, "unsupported_media_type", f"Content-Type {ctype!r} is not accepted; send "
                       "application/json or multipart/form-data")
    async with admitted(specs, state.settings, state.budget) as items:
        vecs = await state.embed(items, role)
    return S.EmbedResponse(model=state.public_desc, dim=state.embedder.dim, embeddings=vecs.tolist())


def document_embed_body(app: FastAPI) -> None:
    """Add the JSON body's schemas to app's OpenAPI (FastAPI documents only bodies it parses itself)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = original()
        spec.setdefault("components", {}).setdefault("schemas", {}).update(EXTRA_SCHEMAS)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
