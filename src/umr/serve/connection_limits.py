"""The HTTP server's own limits, set explicitly rather than left to uvicorn's defaults.

uvicorn starts no timer when a connection opens: a client that connects and sends half a request head, or nothing,
holds its connection (and a file descriptor) for ever (a slowloris). The keep-alive timer only runs between
requests, and the body timeout (`--body-timeout`, umr.serve.inputs) only once the head has arrived. So:

| limit | value (option) | past it |
|---|---|---|
| time to send a complete request head | 10 s (`--header-timeout`) | connection closed |
| idle time between keep-alive requests | 5 s | connection closed |
| open connections + running requests | 1,000 (`--max-connections`) | 503 |
| size of a request head | 64 KiB | 400 |
| connections waiting in the listen backlog | 2,048 | the OS refuses new ones |
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

KEEP_ALIVE_S = 5
MAX_HEAD_BYTES = 64 * 1024
BACKLOG = 2048


def head_timeout_protocol(header_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request head is not complete `header_timeout_s` after
    it opened or after its previous response."""

    class HeadTimeoutH11(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _head_timed_out(self) -> None:
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # still no full head
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

    return HeadTimeoutH11


def uvicorn_limits(header_timeout_s: float, max_connections: int) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run / uvicorn.Config that set every limit in the table above."""
    return {"http": head_timeout_protocol(header_timeout_s), "timeout_keep_alive": KEEP_ALIVE_S,
            "limit_concurrency": max_connections, "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
            "backlog": BACKLOG}
