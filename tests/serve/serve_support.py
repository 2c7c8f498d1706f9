"""Test helpers for the serve tests: a deterministic toy embedder, a fake re-ranker, a small index with images.

ToyEmbedder: bag of hashed words for text + the image's mean colour through a fixed projection, so a query
sharing words with a text (or a colour with an image) has a known best answer. Importable as
`py:serve_support:ToyEmbedder` (the tests folder is on sys.path under pytest).
"""

from __future__ import annotations

import base64
import hashlib
import io
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from umr.index import create_index
from umr.index.base import Index
from umr.items import Item
from umr.models.base import Embedder

DIM = 64
TEXTS = {"t-bus": "a red double decker bus", "t-cat": "a sleeping grey cat on a sofa",
         "t-sea": "waves on a calm blue sea"}
COLOURS = {"i-red": (220, 20, 20), "i-green": (20, 200, 40), "i-blue": (20, 40, 220)}
#: an image+text card
CARD = ("c-yellow", (230, 220, 30), "a yellow taxi card")


def _word(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


class ToyEmbedder(Embedder):
    """Deterministic and fast; text containing 'explode' makes the model raise (failure-isolation tests)."""

    name = "toy-serve"

    def __init__(self) -> None:
        self.colour_proj = np.random.default_rng(7).standard_normal((3, DIM)).astype(np.float32)
        self.batches: list[int] = []

    @property
    def dim(self) -> int:
        return DIM

    def prepare(self, items: Sequence[Item]) -> list[Item]:
        return list(items)

    def forward(self, batch: list[Item]) -> torch.Tensor:
        self.batches.append(len(batch))
        rows = []
        for item in batch:
            if item.text and "explode" in item.text:
                raise RuntimeError("toy model exploded")
            vec = np.zeros(DIM, dtype=np.float32)
            for w in (item.text or "").lower().split():
                vec += _word(w)
            for w in (item.instruction or "").lower().split():  # light: the query's content should dominate
                vec += 0.1 * _word(w)
            if item.image is not None:
                mean = np.asarray(item.load_image(), dtype=np.float32).reshape(-1, 3).mean(0) / 255.0
                vec += 4.0 * (mean - 0.5) @ self.colour_proj
            if not vec.any():
                vec[0] = 1.0
            rows.append(vec)
        return torch.from_numpy(np.stack(rows))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": DIM}


class OtherToyEmbedder(ToyEmbedder):
    """Same dimension, another model: the index built by ToyEmbedder must refuse it."""

    name = "toy-other"


class SeaScorer:
    """A fake re-ranker: 2.0 for candidates mentioning the sea, else 0. Records what it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[Item, list[Item]]] = []

    def score(self, query: Item, candidates: list[Item]) -> list[float]:
        self.seen.append((query, candidates))
        return [2.0 if "sea" in (c.text or "") else 0.0 for c in candidates]


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (32, 32), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_index(folder: Path, embedder: Embedder | None = None) -> Index:
    """Texts, solid-colour images and one card, embedded as candidates; saved under folder/index."""
    embedder = embedder or ToyEmbedder()
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    items = [Item(text=t, id=did) for did, t in TEXTS.items()]
    for did, colour in {**COLOURS, CARD[0]: CARD[1]}.items():
        path = images / f"{did}.png"
        path.write_bytes(png_bytes(colour, (48, 40)))
        items.append(Item(image=str(path), text=CARD[2] if did == CARD[0] else None, id=did))
    index = create_index(embedder.dim, "flat", info={"model": embedder.describe(),
                                                      "model_spec": "py:serve_support:ToyEmbedder"})
    index.add(embedder.encode_corpus(items), items)
    index.save(folder / "index")
    return index


@contextmanager
def running_server(app: Any, **config: Any) -> Iterator[str]:
    """Serve app with uvicorn (extra uvicorn.Config options: `config`) on a free loopback port in a thread; yields
    its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
