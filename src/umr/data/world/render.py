"""Draw an object with PIL. Same object + same variant → the same pixels → the same PNG bytes.

A *variant* is a small random jitter (offset, rotation, shade) seeded by (signature, variant), so two
renderings of one object look alike without being identical (the image→image task).

A *frame* is a dataset's look: each M-BEIR dataset's photos share a style of their own (press photos, catalogue
shots, everyday scenes), so a global pool mixes domains a model can tell apart. The world draws each dataset's
images inside a border of its own colour (see writer.DATASETS); without it, two datasets holding the same object
wrote pixel-identical images, and the global pool held unlabelled copies of a query's positive.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

from umr.data.world.attributes import BACKGROUNDS, COLOURS, Obj

RADIUS = {"small": 0.13, "medium": 0.19, "large": 0.26}  # fraction of the image side
CENTRES = {"left": (0.28, 0.5), "right": (0.72, 0.5), "top": (0.5, 0.28), "bottom": (0.5, 0.72),
           "centre": (0.5, 0.5)}
VERTICES = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}


def _polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    def ring(n: int, radii: list[float], start: float) -> list[tuple[float, float]]:
        return [(cx + radii[i % len(radii)] * math.cos(start + 2 * math.pi * i / n),
                 cy + radii[i % len(radii)] * math.sin(start + 2 * math.pi * i / n)) for i in range(n)]

    base = rot - math.pi / 2
    if shape in VERTICES:
        n = VERTICES[shape]
        return ring(n, [r], base + (math.pi / 4 if shape == "square" else 0.0))
    if shape == "diamond":
        pts = ring(4, [r, 0.62 * r], base)
        return pts
    if shape == "star":
        return ring(10, [r, 0.45 * r], base)
    if shape == "cross":
        a, b = r, 0.36 * r
        local = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b),
                 (-b, -b)]
        c, s = math.cos(rot), math.sin(rot)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in local]
    raise ValueError(f"unknown shape {shape!r}")


def _tint(rgb: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    return tuple(int(round(v + (255 - v) * amount)) for v in rgb)  # type: ignore[return-value]


def render(obj: Obj, variant: int = 0, size: int = 112, frame: tuple[int, int, int] | None = None) -> Image.Image:
    """An RGB image of `obj`, side `size` px. Variant 0 is the canonical rendering (still slightly jittered).

    frame: the dataset's border colour (None: no border).
    """
    rng = random.Random(f"{obj.sig}#{variant}")
    jitter = 0.04 * size
    fx, fy = CENTRES[obj.position]
    cx, cy = fx * size + rng.uniform(-jitter, jitter), fy * size + rng.uniform(-jitter, jitter)
    r = RADIUS[obj.size] * size * rng.uniform(0.93, 1.07)
    rot = math.radians(rng.uniform(-15, 15))
    shade = rng.randint(-18, 18)
    colour = tuple(max(0, min(255, v + shade)) for v in COLOURS[obj.colour])
    img = Image.new("RGB", (size, size), BACKGROUNDS[obj.background])
    mask = Image.new("L", (size, size), 0)
    mdraw = ImageDraw.Draw(mask)
    if obj.shape == "circle":
        box = [cx - r, cy - r, cx + r, cy + r]
        if obj.pattern == "outlined":
            mdraw.ellipse(box, outline=255, width=max(2, size // 28))
        else:
            mdraw.ellipse(box, fill=255)
    else:
        pts = _polygon(obj.shape, cx, cy, r, rot)
        if obj.pattern == "outlined":
            mdraw.line([*pts, pts[0]], fill=255, width=max(2, size // 28), joint="curve")
        else:
            mdraw.polygon(pts, fill=255)
    fg = Image.new("RGB", (size, size), colour)
    if obj.pattern in ("striped", "dotted"):
        pale = _tint(colour, 0.65)  # type: ignore[arg-type]
        period = max(4, size // 14)
        fdraw = ImageDraw.Draw(fg)
        if obj.pattern == "striped":
            fg.paste(pale, (0, 0, size, size))
            for y in range(0, size, period):
                fdraw.rectangle([0, y, size, y + period // 2 - 1], fill=colour)
        else:
            fg.paste(pale, (0, 0, size, size))
            dot = max(1, period // 3)
            for y in range(period // 2, size, period):
                for x in range(period // 2, size, period):
                    fdraw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=colour)
    img.paste(fg, (0, 0), mask)
    if frame is not None:
        ImageDraw.Draw(img).rectangle([0, 0, size - 1, size - 1], outline=frame, width=max(2, size // 22))
    return img


def save_png(img: Image.Image, path: str | Path) -> None:
    """PNG with fixed encoder settings (no metadata), so equal pixels give equal bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", optimize=False, compress_level=6)
