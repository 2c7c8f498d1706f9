"""Shared fixtures for eval tests: a hand-checkable colour embedder and the real-format M-BEIR fixture."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from umr.items import Item
from umr.models.base import Embedder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mbeir_mini"
COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0), "teal": (0, 1, 1)}


class ColourEmbedder(Embedder):
    """3-d colour vectors: a text's colour words, or an image's mean RGB. Scores are easy to compute by hand."""

    name = "colour"

    def __init__(self) -> None:
        self.calls = 0

    @property
    def dim(self) -> int:
        return 3

    def prepare(self, items: Sequence[Item]) -> list[Item]:
        return list(items)

    def forward(self, batch: list[Item]) -> torch.Tensor:
        self.calls += len(batch)
        rows = []
        for it in batch:
            if it.image is not None:
                v = np.asarray(it.load_image(), dtype=np.float64).reshape(-1, 3).mean(0) / 255.0
            else:
                v = np.sum([COLOURS[w] for w in (it.text or "").lower().split() if w in COLOURS] or [(0, 0, 0)], 0)
            rows.append(np.asarray(v, dtype=np.float64) + 1e-12)
        return torch.tensor(np.stack(rows), dtype=torch.float32)


@pytest.fixture
def colour_embedder() -> ColourEmbedder:
    return ColourEmbedder()


@pytest.fixture
def mbeir_mini(tmp_path: Path) -> Path:
    """A copy of tests/fixtures/mbeir_mini (tests may edit it)."""
    dst = tmp_path / "mbeir_mini"
    shutil.copytree(FIXTURE, dst)
    return dst


@pytest.fixture(scope="session")
def world_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated world (16 eval sets, 10 queries and ~40 candidates each), built once per session."""
    from umr.data.world import build_world

    out = tmp_path_factory.mktemp("world") / "tiny"
    build_world(out, size="tiny", seed=0)
    return out
