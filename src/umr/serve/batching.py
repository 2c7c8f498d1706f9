"""Request batching: items from concurrent requests are embedded together in one model call.

Why: an MLLM forward on 16 items costs far less than 16 forwards on one (per-call overhead, better matmul
shapes), so under load the server gathers what is queued — up to `max_batch` items, waiting at most
`max_wait_ms` for more — and runs one call in the model thread. The model runs in a single dedicated thread:
the event loop stays free to accept requests, and torch never sees two calls at once.

Failure isolation: if a gathered call raises, each request of the batch is retried on its own, so only the
request whose item breaks the model fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from umr.errors import UmrError
from umr.items import Item

#: role → embed function: "query" items already carry their instruction; "candidate" items are embedded plainly
EncodeFn = Callable[[str, list[Item]], np.ndarray]


@dataclass
class _Job:
    role: str
    items: list[Item]
    future: asyncio.Future[np.ndarray]
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    """Embed lists of items, batching concurrent submissions (see module docstring).

    enabled=False runs each submission as its own model call (same thread), the baseline for benchmarks.
    """

    def __init__(self, encode: EncodeFn, max_batch: int = 32, max_wait_ms: float = 5.0, enabled: bool = True,
                 executor: ThreadPoolExecutor | None = None) -> None:
        if max_batch < 1:
            raise UmrError(f"max_batch must be ≥ 1, got {max_batch}")
        if max_wait_ms < 0:
            raise UmrError(f"max_wait_ms must be ≥ 0, got {max_wait_ms}")
        self.encode = encode
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="umr-model")
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: counters for /health and the benchmark: model calls made and items embedded
        self.calls = 0
        self.items = 0

    def settings(self) -> dict[str, object]:
        return {"enabled": self.enabled, "max_batch": self.max_batch, "max_wait_ms": self.max_wait * 1000,
                "model_calls": self.calls, "items": self.items}

    async def submit(self, items: Sequence[Item], role: str = "query") -> np.ndarray:
        """Embeddings float32 [len(items), d] for these items; raises what the model raised for them."""
        items = list(items)
        loop = asyncio.get_running_loop()
        if not self.enabled:
            return await loop.run_in_executor(self.executor, self._call, role, items)
        self._ensure_worker(loop)
        assert self._queue is not None
        job = _Job(role, items, loop.create_future())
        await self._queue.put(job)
        return await job.future

    async def close(self) -> None:
        """Stop the worker; queued requests fail instead of hanging."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if not job.future.done():
                    job.future.set_exception(RuntimeError("server is shutting down"))
        self._worker = self._queue = self._loop = None

    # -- internals -------------------------------------------------------------------------------------------
    def _ensure_worker(self, loop: asyncio.AbstractEventLoop) -> None:
        # A queue belongs to one event loop; a test client or a restarted server may bring a new one.
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._loop = loop
            self._worker = loop.create_task(self._run(), name="umr-batcher")

    def _call(self, role: str, items: list[Item]) -> np.ndarray:
        out = np.asarray(self.encode(role, items), dtype=np.float32)
        if out.shape[0] != len(items):
            raise RuntimeError(f"embedder returned {out.shape[0]} vectors for {len(items)} items")
        self.calls += 1
        self.items += len(items)
        return out

    async def _gather(self) -> list[_Job]:
        """The next batch: the first queued job, then whatever else arrives before the batch is full or
        max_wait has passed since the first one arrived."""
        assert self._queue is not None
        jobs = [await self._queue.get()]
        size = len(jobs[0].items)
        deadline = jobs[0].queued_at + self.max_wait
        while size < self.max_batch:
            if self._queue.empty():
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            jobs.append(job)
            size += len(job.items)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            by_role: dict[str, list[_Job]] = {}
            for job in jobs:
                if not job.future.done():  # a client that disconnected has its future cancelled
                    by_role.setdefault(job.role, []).append(job)
            for role, group in by_role.items():
                await self._run_group(loop, role, group)

    async def _run_group(self, loop: asyncio.AbstractEventLoop, role: str, group: list[_Job]) -> None:
        items = [it for job in group for it in job.items]
        try:
            vecs = await loop.run_in_executor(self.executor, self._call, role, items)
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0], exc=exc)
                return
            # One bad item must not fail its neighbours: retry each request alone.
            for job in group:
                try:
                    _settle(job, await loop.run_in_executor(self.executor, self._call, role, job.items))
                except Exception as one_exc:
                    _settle(job, exc=one_exc)
            return
        start = 0
        for job in group:
            _settle(job, vecs[start:start + len(job.items)])
            start += len(job.items)


def _settle(job: _Job, result: np.ndarray | None = None, exc: BaseException | None = None) -> None:
    if job.future.done():
        return
    if exc is not None:
        job.future.set_exception(exc)
    else:
        job.future.set_result(result)
