"""Image URLs in OpenAI-style content parts → image bytes (checked and decoded later by `admitted`).

A data: URL carries the image itself. An http(s) URL makes the server fetch whatever a client names, which can
reach hosts the client cannot (cloud metadata, internal services), so it is refused unless the operator turned
it on (`umr serve --allow-image-urls`); a fetch is then bounded in time and size and follows no redirects.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from umr.serve.inputs import ApiError, decode_base64_image


async def image_source(url: str, field: str, settings: Any) -> bytes:
    """The image bytes a URL carries (data:) or points to (http, https: fetched only where allowed)."""
    url = url.strip()
    if url[:5].lower() == "data:":
        return decode_base64_image(url, field)
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ApiError(422, "invalid_image_url", f"{field}: {url[:40]!r} is not a data: URL; send the image as "
                       "data:image/png;base64,... (file paths are never read)")
    if not settings.allow_image_urls:
        raise ApiError(422, "image_url_not_allowed", f"{field}: remote image URLs are off on this server; send the "
                       "image as a data: URL (data:image/png;base64,...), or start umr serve with "
                       "--allow-image-urls")
    return await _fetch(url, field, settings.max_request_bytes, settings.body_timeout_s or 30.0)


async def _fetch(url: str, field: str, max_bytes: int, timeout_s: float) -> bytes:
    import httpx

    chunks, size = [], 0
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client, \
                client.stream("GET", url) as response:
            if response.status_code != 200:
                raise ApiError(422, "image_url_failed", f"{field}: fetching {url} answered HTTP "
                               f"{response.status_code}; send the image as a data: URL")
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError(413, "image_too_large", f"{field}: {url} is over the limit of {max_bytes:,} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise ApiError(422, "image_url_failed", f"{field}: cannot fetch {url} ({type(exc).__name__}); send the image "
                       "as a data: URL") from exc
    return b"".join(chunks)
