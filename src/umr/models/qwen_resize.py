"""The image resize every published Qwen2-VL embedder runs before the processor (qwen-vl-utils' fetch_image).

GME's gme_inference.py and LamRA's / U-MARVEL's collators/qwen2_vision_process.py resize each image so both
sides are multiples of 28 px and the pixel count is within [min, max] (GME: 4..16384 tokens, LamRA/U-MARVEL:
4..300), then hand it to the processor, which resizes again within its own budget. The first resize changes
the pixels the model sees (and caps LamRA/U-MARVEL images at 300 tokens), so it is part of the recipe.
"""

from __future__ import annotations

import math

from PIL import Image


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """(height, width): multiples of `factor`, area within [min_pixels, max_pixels], aspect kept as well as
    those allow (the rounding rules of qwen-vl-utils, Python's round included)."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def pre_resize(image: Image.Image, min_pixels: int, max_pixels: int, factor: int = 28) -> Image.Image:
    """fetch_image's resize: PIL's default filter, to the smart_resize size."""
    width, height = image.size
    h, w = smart_resize(height, width, factor, min_pixels, max_pixels)
    return image.resize((w, h))
