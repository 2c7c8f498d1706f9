"""Shared constants and image helpers of the MLLM model tests (a module, so test files can import it)."""

from __future__ import annotations

from PIL import Image, ImageDraw

MLLM_RECIPES = ["gme", "gme-qwen2.5", "u-marvel", "lamra", "mm-embed"]


def draw(colour: str, shape: str = "circle", size: tuple[int, int] = (112, 112)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    box = (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4)
    (d.ellipse if shape == "circle" else d.rectangle)(box, fill=colour)
    return img
