"""Bounds on the work and memory one request may cause, so that a hostile client cannot take the server down.

The costly part of a request is its images once decoded (3 bytes a pixel as RGB, several times that while an image
processor converts them), not its body: 64 tiny PNGs of one colour at the pixel limit are a 173 KB body that
decodes to 3 GB. So pixels are counted from the image headers, before anything is decoded:

- one request: at most `max_images` images and `max_request_pixels` pixels in all → 413 past either;
- all requests together: decoded pixels held at once stay under `max_inflight_pixels`; a request that would go
  over waits up to `queue_wait_s` for others to finish, then gets 429 with Retry-After;
- the model's queue: at most `max_queued_items` items waiting for the model → 429 past it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from umr.items import Item
from umr.serve.inputs import ApiError, check_text, decode_base64_image, image_pixels, make_item

BUSY_HEADERS = {"Retry-After": "1"}


@dataclass(frozen=True)
class ItemSpec:
    """One item as the client sent it: the image still encoded (base64 text or uploaded bytes)."""

    text: str | None
    image: str | bytes | None
    instruction: str | None
    field: str
    ident: str | None = None


class PixelBudget:
    """Decoded pixels held by requests in progress, server-wide. Used from the event loop only (no lock)."""

    def __init__(self, capacity: int, wait_s: float, poll_s: float = 0.01) -> None:
        self.capacity, self.wait_s, self.poll_s = capacity, wait_s, poll_s
        self.used = 0
        self.peak = 0

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        if pixels <= 0:
            yield
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        # Polling, not a Condition: it binds to no event loop, and the wait is short and rare (only under attack)
        while self.used and self.used + pixels > self.capacity:
            if loop.time() >= deadline:
                raise ApiError(429, "server_busy", f"the server is decoding {self.used:,} pixels of other requests' "
                               f"images; this request's {pixels:,} would go over its budget of {self.capacity:,}. "
                               "Retry shortly", BUSY_HEADERS)
            await asyncio.sleep(self.poll_s)
        self.used += pixels
        self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            self.used -= pixels


class QueueGate:
    """Items submitted to the model and not yet answered; past `limit` a request is turned away at once."""

    def __init__(self, limit: int) -> None:
        self.limit, self.pending = limit, 0

    @asynccontextmanager
    async def enter(self, n: int) -> AsyncIterator[None]:
        if self.pending and self.pending + n > self.limit:
            raise ApiError(429, "server_busy", f"{self.pending} items are waiting for the model (limit "
                           f"{self.limit}); retry shortly", BUSY_HEADERS)
        self.pending += n
        try:
            yield
        finally:
            self.pending -= n


@asynccontextmanager
async def admitted(specs: Sequence[ItemSpec], settings: Any, budget: PixelBudget) -> AsyncIterator[list[Item]]:
    """Items for `specs`, decoded while this request holds its pixels in `budget` (release: on exit).

    Checked before any image is decoded: text limits, base64, each image's header, the image count and the
    request's total pixels.
    """
    raws: list[bytes | None] = []
    for spec in specs:
        check_text(spec.text, f"{spec.field}.text", settings.max_text_chars)
        check_text(spec.instruction, f"{spec.field}.instruction", settings.max_text_chars)
        image = spec.image
        raws.append(image if isinstance(image, bytes) or image is None
                    else decode_base64_image(image, f"{spec.field}.image"))
    n_images = sum(raw is not None for raw in raws)
    if n_images > settings.max_images:
        raise ApiError(413, "too_many_images", f"{n_images} images in one request, over the limit of "
                       f"{settings.max_images}; split the request")
    pixels = sum(image_pixels(raw, f"{spec.field}.image", settings.max_image_pixels)
                 for spec, raw in zip(specs, raws, strict=True) if raw is not None)
    if pixels > settings.max_request_pixels:
        raise ApiError(413, "too_many_pixels", f"the request's images hold {pixels:,} pixels in all, over the limit "
                       f"of {settings.max_request_pixels:,}; send fewer or smaller images")
    async with budget.hold(pixels):
        if n_images:
            from starlette.concurrency import run_in_threadpool  # decoding never stalls the event loop

            items = await run_in_threadpool(_decode_all, specs, raws, settings)
        else:
            items = _decode_all(specs, raws, settings)
        yield items


def _decode_all(specs: Sequence[ItemSpec], raws: list[bytes | None], settings: Any) -> list[Item]:
    return [make_item(s.text, raw, s.instruction, s.field, settings.max_image_pixels, settings.max_text_chars,
                      ident=s.ident) for s, raw in zip(specs, raws, strict=True)]
