"""Shared helpers of the re-ranker tests (a module, so test files import it by a unique name)."""

from __future__ import annotations

from PIL import Image, ImageDraw


def draw(colour: str, shape: str = "circle", px: int = 112) -> Image.Image:
    img = Image.new("RGB", (px, px), "white")
    d = ImageDraw.Draw(img)
    (d.ellipse if shape == "circle" else d.rectangle)((px // 4, px // 4, 3 * px // 4, 3 * px // 4), fill=colour)
    return img
