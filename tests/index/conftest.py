"""Shared fixtures for index tests: a deterministic test embedder, small corpora (helpers: index_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

HERE = Path(__file__).resolve().parent
# hash_embedder.py and index_helpers.py are imported by tests here and by subprocesses (via PYTHONPATH).
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from hash_embedder import HashEmbedder  # noqa: E402
from index_helpers import text_items, write_jsonl  # noqa: E402


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
