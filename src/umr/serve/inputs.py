"""Turning client input into Items safely, and the errors the API sends back.

Safety rules kept here: images arrive as bytes (base64 or an upload) and are decoded in memory with a pixel
limit checked from the header before any decoding; a string is never treated as a path. Every problem
becomes an `ApiError` whose JSON body names the field and what to do.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from PIL import Image, UnidentifiedImageError

from umr.items import Item, ItemError, load_image


class ApiError(HTTPException):
    """An HTTP error with a machine-readable code; rendered as {"error": code, "detail": message}.

    A subclass of HTTPException so FastAPI passes it through unchanged even when raised while it reads a body.
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code


def decode_base64_image(value: str, field: str) -> bytes:
    """Raw bytes of a base64 image (a `data:image/...;base64,` prefix is allowed)."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "invalid_image", f"{field}: empty image; send the image bytes as base64")
    data = value.strip()
    if data.startswith("data:"):
        header, sep, data = data.partition(",")
        if not sep or ";base64" not in header:
            raise ApiError(422, "invalid_image", f"{field}: a data: URL must be base64-encoded "
                           "(data:image/png;base64,...)")
    try:
        # validate=True: characters outside the base64 alphabet are an error, not silently dropped
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(422, "invalid_base64", f"{field}: not valid base64 ({exc}); send the image file's bytes "
                       "base64-encoded (file paths are not accepted)") from exc
    if not raw:
        raise ApiError(422, "invalid_image", f"{field}: image is empty")
    return raw


def open_image(raw: bytes, field: str, max_pixels: int) -> Image.Image:
    """Decode image bytes to RGB; 413 when over the pixel limit, 422 when not an image."""
    try:
        with Image.open(io.BytesIO(raw)) as probe:  # reads the header only: size known before decoding
            w, h = probe.size
    except Image.DecompressionBombError as exc:
        raise ApiError(413, "image_too_large", f"{field}: image is over the pixel limit of {max_pixels:,}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ApiError(422, "invalid_image", f"{field}: not a readable image (PNG, JPEG, WebP, GIF, BMP …)") from exc
    if w * h > max_pixels:
        raise ApiError(413, "image_too_large", f"{field}: image is {w}x{h} = {w * h:,} pixels, over the limit of "
                       f"{max_pixels:,}; downscale it")
    try:
        return load_image(raw, max_pixels=max_pixels)
    except ItemError as exc:
        raise ApiError(422, "invalid_image", f"{field}: {exc.problem}") from exc


def make_item(text: str | None, image: str | bytes | None, instruction: str | None, field: str,
              max_pixels: int, max_text_chars: int, ident: str | None = None) -> Item:
    """An Item from client fields; the image is already decoded, so no later step can read a path."""
    if text is not None and len(text) > max_text_chars:
        raise ApiError(422, "text_too_long", f"{field}.text: {len(text):,} characters, over the limit of "
                       f"{max_text_chars:,}")
    if instruction is not None and len(instruction) > max_text_chars:
        raise ApiError(422, "text_too_long", f"{field}.instruction: over the limit of {max_text_chars:,} characters")
    pil = None
    if image is not None:
        raw = image if isinstance(image, bytes) else decode_base64_image(image, f"{field}.image")
        pil = open_image(raw, f"{field}.image", max_pixels)
    if (text is None or not text.strip()) and pil is None:
        raise ApiError(422, "empty_item", f"{field}: give text, an image, or both")
    return Item(text=text if text and text.strip() else None, image=pil, instruction=instruction or None, id=ident)


async def make_item_async(text: str | None, image: str | bytes | None, instruction: str | None, field: str,
                          max_pixels: int, max_text_chars: int, ident: str | None = None) -> Item:
    """make_item, with image decoding in a worker thread so a large image never stalls the event loop."""
    if image is None:
        return make_item(text, None, instruction, field, max_pixels, max_text_chars, ident)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(make_item, text, image, instruction, field, max_pixels, max_text_chars, ident)


def record_image_path(image: str | None, index_dir: Path | None) -> Path | None:
    """Where an indexed item's image lives. The path comes from the index (trusted), never from a client.
    Relative paths were written relative to where the index was built: try the working directory, then the
    index folder and its parent."""
    if not image:
        return None
    path = Path(image)
    if path.is_absolute() or index_dir is None:
        return path
    for base in (Path.cwd(), index_dir, index_dir.parent):
        if (base / path).is_file():
            return base / path
    return path


def thumbnail_jpeg(path: Path, px: int) -> bytes:
    """A JPEG thumbnail, at most px on its longer side."""
    img = load_image(path)
    img.thumbnail((px, px))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def validation_message(errors: list[Any]) -> str:
    """pydantic errors → one line: 'body.k: Input should be a valid integer; body.items: Field required'."""
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (image paths are not accepted; send images as base64)" \
                if "path" in where else "unknown field"
        parts.append(f"{where}: {msg}" if where else msg)
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


class BodyLimit:
    """ASGI middleware: requests over max_bytes get 413 — by Content-Length up front, else while streaming."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = ApiError(413, "request_too_large", f"request body is over the limit of {self.max_bytes:,} bytes")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_error(send, too_big)
            return
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise too_big
            return message

        await self.app(scope, counted, send)


async def _send_error(send: Any, err: ApiError) -> None:
    import json

    body = json.dumps({"error": err.code, "detail": err.detail}).encode()
    await send({"type": "http.response.start", "status": err.status_code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
