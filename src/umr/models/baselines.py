"""Reference embedders that need no model: the floor and the ceiling of a benchmark.

    random   a fixed random vector per item: the chance floor (R@k ≈ k / pool)
    oracle   the world's hidden answer keys (world_meta.jsonl): the ceiling; needs a world data root

`umr.models.registry.load_embedder` resolves both names, so every verb that takes `--model` accepts them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from umr.errors import UmrError
from umr.items import Item
from umr.models.base import Embedder


def _unit(seed_text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(seed_text.encode("utf-8")).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _side_id(item: Item) -> str:
    """The item's id, query ids tagged: M-BEIR qids and dids are separate namespaces ("9:1" can name a query and a
    candidate)."""
    return f"query|{item.id}" if item.is_query else str(item.id)


class VectorEmbedder(Embedder):
    """An embedder computing vectors without a network; subclasses define `vector(item)`."""

    def __init__(self, dim: int) -> None:
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def vector(self, item: Item) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, items: Sequence[Item]) -> list[Item]:
        return list(items)

    def forward(self, batch: list[Item]) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.vector(it) for it in batch]))


def _image_key(image: Any) -> str | None:
    """What identifies an image across runs and data roots.

    A path: its file name, not the whole path (the same data under another root must get the same vectors). An
    in-memory image (a decoded video frame, raw bytes): a hash of its pixels or bytes — its str() holds a memory
    address, which made two runs of the same video evaluation give different numbers.
    """
    if image is None:
        return None
    if isinstance(image, str | Path):
        return Path(str(image)).name
    if isinstance(image, bytes):
        return hashlib.sha256(image).hexdigest()
    if isinstance(image, Image.Image):
        return f"{image.mode}{image.size}:" + hashlib.sha256(image.tobytes()).hexdigest()
    return Path(str(image)).name


class RandomEmbedder(VectorEmbedder):
    """A random unit vector per (side, content): queries and candidates never share one."""

    name = "random"

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        super().__init__(dim)
        self.seed = seed

    def vector(self, item: Item) -> np.ndarray:
        return _unit(f"{self.seed}|{_side_id(item)}|{item.text}|{_image_key(item.image)}", self.dim)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "seed": self.seed}


class OracleEmbedder(VectorEmbedder):
    """Looks up each id's hidden answer key in the world's `world_meta.jsonl` and embeds the key.

    A query's key is the key of the candidate it asks for, so the positive scores 1 and every other candidate
    ~0: this is the ceiling the world allows (below 1 only where a pool held two candidates with one key).
    """

    name = "oracle"

    def __init__(self, data_root: str | Path, dim: int = 256) -> None:
        super().__init__(dim)
        path = Path(data_root) / "world_meta.jsonl"
        if not path.is_file():
            raise UmrError(f"the oracle needs a generated world: {path} not found (make one with `umr world`)")
        self.keys: dict[tuple[str, str], str] = {}  # (kind "qid" | "did", id) → key
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                self.keys[(row.get("kind", "did"), row["id"])] = row["key"]
        self.source = str(path)

    def vector(self, item: Item) -> np.ndarray:
        kind, ident = ("qid" if item.is_query else "did"), item.id
        if (kind, ident) not in self.keys:
            raise UmrError(f"oracle: {kind} {ident!r} is not in {self.source}")
        return _unit(self.keys[(kind, ident)], self.dim)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "meta": self.source}
