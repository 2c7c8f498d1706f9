"""Turning client input into Items safely, and the errors the API sends back.

Safety rules kept here: images arrive as bytes (base64 or an upload) and are decoded in memory with a pixel
limit checked from the header before any decoding; a string is never treated as a path. Every problem
becomes an `ApiError` whose JSON body names the field and what to do.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from PIL import Image, UnidentifiedImageError

from umr.items import Item, ItemError, load_image


class ApiError(HTTPException):
    """An HTTP error with a machine-readable code; rendered by `error_body` ({"error": code, "detail": message}).

    A subclass of HTTPException so FastAPI passes it through unchanged even when raised while it reads a body.
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code


#: routes under this prefix speak OpenAI's dialect, errors included (umr.serve.openai_route)
OPENAI_PREFIX = "/v1/"
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                 429: "rate_limit_error"}


def error_body(path: str, status: int, code: str, detail: str) -> dict[str, Any]:
    """The JSON body of an error: umr's {"error": code, "detail": message}, or on the OpenAI-compatible routes
    OpenAI's {"error": {"message", "type", "param", "code"}}, which its clients parse into their exceptions."""
    if not path.startswith(OPENAI_PREFIX):
        return {"error": code, "detail": detail}
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": detail, "type": kind, "param": None, "code": code}}


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


def image_pixels(raw: bytes, field: str, max_pixels: int) -> int:
    """width × height from the image's header (nothing decoded); 413 over the pixel limit, 422 if not an image."""
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
    return w * h


def open_image(raw: bytes, field: str, max_pixels: int) -> Image.Image:
    """Decode image bytes to RGB; 413 when over the pixel limit, 422 when not an image (or too small / skewed
    for the models: see umr.items.MIN_IMAGE_SIDE)."""
    image_pixels(raw, field, max_pixels)
    try:
        return load_image(raw, max_pixels=max_pixels)
    except ItemError as exc:
        raise ApiError(422, "invalid_image", f"{field}: {exc.problem}") from exc


def check_text(value: str | None, field: str, max_chars: int) -> None:
    """422 for text over the length limit or not encodable as UTF-8 (a lone surrogate from a \\ud800 escape: JSON
    allows it, every tokenizer fails on it)."""
    if value is None:
        return
    if len(value) > max_chars:
        raise ApiError(422, "text_too_long", f"{field}: {len(value):,} characters, over the limit of {max_chars:,}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(422, "invalid_text", f"{field}: not valid Unicode (a lone surrogate "
                       f"U+{ord(value[exc.start]):04X} at character {exc.start + 1}); send UTF-8 text") from exc


def make_item(text: str | None, image: str | bytes | None, instruction: str | None, field: str,
              max_pixels: int, max_text_chars: int, ident: str | None = None) -> Item:
    """An Item from client fields; the image is already decoded, so no later step can read a path."""
    check_text(text, f"{field}.text", max_text_chars)
    check_text(instruction, f"{field}.instruction", max_text_chars)
    pil = None
    if image is not None:
        raw = image if isinstance(image, bytes) else decode_base64_image(image, f"{field}.image")
        pil = open_image(raw, f"{field}.image", max_pixels)
    if (text is None or not text.strip()) and pil is None:
        raise ApiError(422, "empty_item", f"{field}: give text, an image, or both")
    try:
        return Item(text=text if text and text.strip() else None, image=pil, instruction=instruction or None,
                    id=ident)
    except ItemError as exc:  # whatever Item itself refuses is the client's input too
        raise ApiError(422, "invalid_item", f"{field}: {exc.problem}") from exc


def public_description(desc: dict[str, Any]) -> dict[str, Any]:
    """A model description with absolute paths cut to their last folder: the server's file layout is not for
    clients without the token (a hub id or tiny:… name is kept as it is)."""
    def cut(value: Any) -> Any:
        if isinstance(value, str) and (value.startswith(("/", "~")) or (len(value) > 2 and value[1:3] == ":\\")):
            return Path(value).name
        return value

    return {k: cut(v) for k, v in desc.items()}


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
    """ASGI middleware: requests over max_bytes get 413 — by Content-Length up front, else while streaming — and
    a body not fully received within timeout_s gets 408 (half-open bodies would hold a connection forever)."""

    def __init__(self, app: Any, max_bytes: int, timeout_s: float | None = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = ApiError(413, "request_too_large", f"request body is over the limit of {self.max_bytes:,} bytes")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_error(send, too_big, scope.get("path", ""))
            return
        seen, done, deadline = 0, False, None

        async def counted() -> dict[str, Any]:
            nonlocal seen, done, deadline
            if done or self.timeout_s is None:  # after the body, receive() only waits for a disconnect
                return await receive()
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + self.timeout_s  # for the whole body: slow drips count too
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
            except TimeoutError:
                raise ApiError(408, "body_timeout", f"the request body did not arrive within {self.timeout_s:g} s",
                               {"Connection": "close"}) from None
            seen += len(message.get("body", b""))
            done = message.get("type") != "http.request" or not message.get("more_body", False)
            if seen > self.max_bytes:
                raise too_big
            return message

        await self.app(scope, counted, send)


async def _send_error(send: Any, err: ApiError, path: str) -> None:
    import json

    body = json.dumps(error_body(path, err.status_code, err.code, err.detail)).encode()
    await send({"type": "http.response.start", "status": err.status_code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
