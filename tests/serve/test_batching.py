"""The request batcher: concurrent submissions share model calls, results go back to the right caller, and a
failing item fails only its own request."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from serve_support import ToyEmbedder, build_index

from umr.items import Item
from umr.serve.app import ServeSettings, create_app
from umr.serve.batching import Batcher


def recording_encoder():
    """An encode function that returns one row per item: [item number], and logs each call's items."""
    calls: list[list[str]] = []

    def encode(role: str, items: list[Item]) -> np.ndarray:
        calls.append([it.text for it in items])
        if any("explode" in it.text for it in items):
            raise RuntimeError("boom")
        return np.array([[float(it.text.split()[-1])] for it in items], dtype=np.float32)

    return encode, calls


async def submit_all(batcher: Batcher, texts: list[str], role: str = "query") -> list:
    return await asyncio.gather(*(batcher.submit([Item(text=t)], role) for t in texts), return_exceptions=True)


def test_concurrent_requests_share_a_call_and_get_their_own_rows() -> None:
    encode, calls = recording_encoder()
    batcher = Batcher(encode, max_batch=4, max_wait_ms=200)
    out = asyncio.run(submit_all(batcher, [f"item {i}" for i in range(10)]))
    assert [float(o[0, 0]) for o in out] == list(range(10))
    assert [len(c) for c in calls] == [4, 4, 2]  # full batches go at once; the rest after max_wait
    assert batcher.calls == 3 and batcher.items == 10


def test_multi_item_requests_stay_together() -> None:
    encode, calls = recording_encoder()
    batcher = Batcher(encode, max_batch=8, max_wait_ms=200)

    async def go():
        return await asyncio.gather(batcher.submit([Item(text="a 1"), Item(text="a 2"), Item(text="a 3")]),
                                    batcher.submit([Item(text="b 4")]))

    a, b = asyncio.run(go())
    assert a[:, 0].tolist() == [1, 2, 3] and b[:, 0].tolist() == [4]
    assert calls == [["a 1", "a 2", "a 3", "b 4"]]


def test_roles_are_never_mixed_in_one_call() -> None:
    seen: list[tuple[str, int]] = []

    def encode(role: str, items: list[Item]) -> np.ndarray:
        seen.append((role, len(items)))
        return np.zeros((len(items), 2), dtype=np.float32)

    batcher = Batcher(encode, max_batch=16, max_wait_ms=500)

    async def go():
        await asyncio.gather(*(batcher.submit([Item(text="x")], "query" if i % 2 else "candidate")
                               for i in range(6)))

    asyncio.run(go())
    assert sorted(seen) == [("candidate", 3), ("query", 3)]


def test_a_failing_item_fails_only_its_request() -> None:
    encode, calls = recording_encoder()
    batcher = Batcher(encode, max_batch=8, max_wait_ms=200)
    out = asyncio.run(submit_all(batcher, ["ok 1", "explode 2", "ok 3"]))
    assert float(out[0][0, 0]) == 1.0 and float(out[2][0, 0]) == 3.0
    assert isinstance(out[1], RuntimeError) and str(out[1]) == "boom"
    assert calls[0] == ["ok 1", "explode 2", "ok 3"]  # tried together first, then one by one
    assert sorted(map(tuple, calls[1:])) == [("explode 2",), ("ok 1",), ("ok 3",)]
    assert float(asyncio.run(submit_all(batcher, ["ok 9"]))[0][0, 0]) == 9.0  # still serving afterwards


def test_batching_off_makes_one_call_per_request() -> None:
    encode, calls = recording_encoder()
    batcher = Batcher(encode, max_batch=8, max_wait_ms=1000, enabled=False)
    out = asyncio.run(submit_all(batcher, [f"t {i}" for i in range(5)]))
    assert [float(o[0, 0]) for o in out] == [0, 1, 2, 3, 4] and len(calls) == 5


def test_wrong_row_count_is_an_error() -> None:
    batcher = Batcher(lambda role, items: np.zeros((1, 2), dtype=np.float32), max_wait_ms=0)
    with pytest.raises(RuntimeError, match="returned 1 vectors for 2 items"):
        asyncio.run(batcher.submit([Item(text="a"), Item(text="b")]))


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(lambda r, i: None, max_batch=0)


def test_concurrent_http_searches_are_batched_and_answered_correctly(tmp_path) -> None:
    embedder = ToyEmbedder()
    index = build_index(tmp_path, embedder)
    embedder.batches.clear()
    app = create_app(index, embedder, ServeSettings(max_batch=16, max_wait_ms=300, index_dir=tmp_path / "index"))
    queries = {"sleeping cat": "t-cat", "blue sea": "t-sea", "double decker": "t-bus", "yellow taxi": "c-yellow"}

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            texts = [q for q in queries for _ in range(3)]
            responses = await asyncio.gather(*(client.post("/search", json={"text": t, "k": 1}) for t in texts))
            return texts, responses

    texts, responses = asyncio.run(go())
    assert [r.json()["results"][0]["id"] for r in responses] == [queries[t] for t in texts]
    assert sum(embedder.batches) == 12 and len(embedder.batches) < 12 and max(embedder.batches) > 1
