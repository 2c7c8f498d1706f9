"""A cheap, deterministic, test-only Embedder: bag of hashed words + a tiny image thumbnail projection.

Texts sharing words get similar vectors and images with similar pixels too, so ranking tests mean something.
Importable by subprocesses (tests put this folder on PYTHONPATH and pass `--model hash_embedder:HashEmbedder`).
UMR_TEST_EMBED_DELAY (seconds per batch) slows it down so a kill test can land mid-job.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from umr.items import Item
from umr.models.base import Embedder


def _word_vector(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class HashEmbedder(Embedder):
    name = "hash-test"

    def __init__(self, dim: int = 32, salt: str = "") -> None:
        self._dim = int(os.environ.get("UMR_TEST_EMBED_DIM", dim))
        self.salt = salt
        self.delay = float(os.environ.get("UMR_TEST_EMBED_DELAY", "0"))
        rng = np.random.default_rng(1234)
        self.pixel_proj = rng.standard_normal((48, self._dim)).astype(np.float32)

    @property
    def dim(self) -> int:
        return self._dim

    def prepare(self, items: Sequence[Item]) -> list[Item]:
        return list(items)

    def _one(self, item: Item) -> np.ndarray:
        vec = np.zeros(self._dim, dtype=np.float32)
        text = f"{item.instruction or ''} {item.text or ''}"
        for word in text.lower().split():
            vec += _word_vector(self.salt + word, self._dim)
        if item.image is not None:
            pixels = np.asarray(item.load_image().resize((4, 4)), dtype=np.float32).reshape(-1) / 255.0
            vec += 3.0 * (pixels - 0.5) @ self.pixel_proj
        if not vec.any():
            vec[0] = 1.0
        return vec

    def forward(self, batch: list[Item]) -> torch.Tensor:
        if self.delay:
            time.sleep(self.delay)
        return torch.from_numpy(np.stack([self._one(it) for it in batch]))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "salt": self.salt}


class SaltedHashEmbedder(HashEmbedder):
    """Same shape, different vectors: stands in for 'another model' in mismatch tests."""

    def __init__(self) -> None:
        super().__init__(salt="other:")


class WrongDimEmbedder(HashEmbedder):
    """Claims dim 32 but its encode returns 16-d vectors: a broken model the job must catch before writing."""

    def encode(self, items: Any, **kw: Any) -> np.ndarray:
        return super().encode(items, **kw)[:, :16]


class RankCrashHashEmbedder(HashEmbedder):
    """HashEmbedder whose process dies (os._exit, as a SIGKILL would) on its UMR_TEST_CRASH_BATCH-th batch when it
    is rank UMR_TEST_CRASH_RANK: a rank lost mid-job. Same vectors and description as HashEmbedder, so a rerun
    with HashEmbedder resumes the same cache."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def forward(self, batch: list[Item]) -> torch.Tensor:
        self.batches += 1
        if (os.environ.get("RANK", "0") == os.environ.get("UMR_TEST_CRASH_RANK")
                and self.batches >= int(os.environ.get("UMR_TEST_CRASH_BATCH", "1"))):
            os._exit(9)
        return super().forward(batch)
