"""Shared by the adapter tests: the serve tests' deterministic ToyEmbedder and corpus (texts sharing words are
close; images by their mean colour), a query instruction, and data: URLs of solid-colour images."""

from __future__ import annotations

import sys
from pathlib import Path

SERVE_TESTS = Path(__file__).resolve().parents[1] / "serve"
if str(SERVE_TESTS) not in sys.path:  # serve_support.py holds the toy model and corpus these tests share
    sys.path.insert(0, str(SERVE_TESTS))

from serve_support import COLOURS, TEXTS, ToyEmbedder, b64, png_bytes  # noqa: E402

INSTRUCTION = "Retrieve the best match."
__all__ = ["COLOURS", "INSTRUCTION", "TEXTS", "ToyEmbedder", "data_url", "png_bytes"]


def data_url(colour: tuple[int, int, int]) -> str:
    return "data:image/png;base64," + b64(png_bytes(colour))
