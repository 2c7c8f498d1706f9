"""Helpers shared by the index tests (a uniquely named module: `conftest` is ambiguous across test folders)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from umr.items import Item

HERE = Path(__file__).resolve().parent

WORDS = [
    "red", "blue", "green", "yellow", "cat", "dog", "car", "tree", "house", "boat", "sun", "moon",
    "river", "stone", "cloud", "bird", "fish", "apple", "road", "chair", "lamp", "book", "door", "window",
]


def text_items(n: int, seed: int = 0, prefix: str = "d") -> list[Item]:
    """n text items with ids d0..d{n-1}, each 3–8 words from a small vocabulary (so texts overlap)."""
    rng = np.random.default_rng(seed)
    return [Item(text=" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))), id=f"{prefix}{i}") for i in range(n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def clustered(n: int, d: int, n_clusters: int = 50, noise: float = 0.3, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres: structure like real embeddings (random vectors defeat ANN)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, n_clusters, n)] + noise * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
