"""Tiny models built once per session (each ~0.5 s), shared read-only by the model tests."""

from __future__ import annotations

import os

import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MLLM_RECIPES = ["gme", "gme-qwen2.5", "u-marvel", "lamra", "mm-embed"]


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from umr.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny")
    return {name: str(build_tiny(name, root / name)) for name in MLLM_RECIPES}


@pytest.fixture(scope="session")
def embedders(tiny_dirs: dict[str, str]) -> dict:
    from umr import load_embedder

    return {name: load_embedder(path) for name, path in tiny_dirs.items()}


def draw(colour: str, shape: str = "circle", size: tuple[int, int] = (112, 112)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    box = (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4)
    (d.ellipse if shape == "circle" else d.rectangle)(box, fill=colour)
    return img
