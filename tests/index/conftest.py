"""Shared fixtures for index tests: a deterministic test embedder, small corpora, clustered vectors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from umr.items import Item

HERE = Path(__file__).resolve().parent
# hash_embedder.py is imported by tests here and by subprocesses (via PYTHONPATH): put this folder on the path.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from hash_embedder import HashEmbedder  # noqa: E402

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


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def text_corpus(tmp_path: Path) -> Path:
    """25 text items as a JSONL corpus file."""
    return write_jsonl(tmp_path / "corpus.jsonl", [{"id": it.id, "text": it.text} for it in text_items(25)])


@pytest.fixture
def mixed_corpus(tmp_path: Path) -> Path:
    """An M-BEIR-style pool mixing text, image and image+text candidates (did/txt/img_path keys)."""
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    colours = {"red": (220, 20, 20), "green": (20, 200, 30), "blue": (20, 40, 220), "yellow": (230, 220, 20)}
    rows = []
    for name, rgb in colours.items():
        Image.new("RGB", (16, 16), rgb).save(img_dir / f"{name}.png")
        rows.append({"did": f"img:{name}", "img_path": f"images/{name}.png", "modality": "image"})
        rows.append({"did": f"card:{name}", "img_path": f"images/{name}.png", "txt": f"a {name} square card",
                     "modality": "image,text"})
        rows.append({"did": f"txt:{name}", "txt": f"the colour {name} in words", "modality": "text"})
    return write_jsonl(tmp_path / "pool.jsonl", rows)
