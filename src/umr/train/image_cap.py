"""A training-time cap on image tokens (Qwen2-VL family): U-MARVEL's distillation stage trains at 224 × 224 pixels
at most (64 tokens; GitHub chaxjli/U-MARVEL collators/qwen2_vl_7b.py, `set_max_pixels(224*224)`), GME trains at up
to 1,024 tokens where it embeds at up to 1,280. The cap changes only what the trainer feeds the model: the model
written to final/ keeps the recipe it was loaded with, so evaluation sees images as its recipe says."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from umr.errors import UmrError


def cap_image_tokens(embedder: Any, tokens: int) -> Callable[[], None]:
    """Cap `embedder`'s images at `tokens` merged tokens (28-px units) until the returned function is called."""
    recipe = getattr(embedder, "recipe", None)
    backbone = getattr(embedder, "backbone", None)
    if recipe is None or backbone is None or not str(recipe.family).startswith("qwen"):
        raise UmrError(f"max_image_tokens applies to Qwen2-VL-family embedders (dynamic resolution), not "
                       f"{getattr(embedder, 'name', type(embedder).__name__)}")
    pre = recipe.image_pre_resize
    capped = dataclasses.replace(
        recipe, max_image_tokens=tokens, min_image_tokens=min(recipe.min_image_tokens or 4, tokens),
        image_pre_resize=[min(pre[0], tokens), min(pre[1], tokens)] if pre else None)
    embedder.recipe = backbone.recipe = capped

    def restore() -> None:
        embedder.recipe = backbone.recipe = recipe

    return restore
