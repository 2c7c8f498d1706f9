"""Shared fixtures for training tests: a tiny real Qwen2-VL (gme recipe) built once per session, and
synthetic colour/shape images with captions."""

from __future__ import annotations

import os

import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220), "yellow": (235, 215, 20),
           "purple": (140, 40, 170), "black": (10, 10, 10)}


def shape_image(colour: str, shape: str = "circle", px: int = 112, jitter: int = 0) -> Image.Image:
    """A shape of one colour on white; `jitter` shifts it so images of a class are not identical."""
    img = Image.new("RGB", (px, px), "white")
    d = ImageDraw.Draw(img)
    lo, hi = px // 4 + jitter, 3 * px // 4 + jitter
    (d.ellipse if shape == "circle" else d.rectangle)((lo, lo, hi, hi), fill=COLOURS[colour])
    return img


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory):
    """The offline world, size tiny, seed 0, built once per session: tests read it, none writes to it."""
    from umr.data.world import build_world

    out = tmp_path_factory.mktemp("world") / "world-tiny"
    build_world(out, size="tiny", seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_gme_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from umr.models.tiny import build_tiny

    return str(build_tiny("gme", tmp_path_factory.mktemp("tiny") / "gme"))


@pytest.fixture()
def tiny_gme(tiny_gme_dir: str):  # a fresh, trainable copy per test
    from umr import load_embedder

    return load_embedder(tiny_gme_dir, device="cpu")


@pytest.fixture(scope="session")
def draw():  # the drawing function, as a fixture so tests need not import conftest by name
    return shape_image
