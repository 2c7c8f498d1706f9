"""Render an Item into a recipe's prompt string, remembering where the instruction sits.

The instruction's character span lets pooling drop its tokens later (via the tokenizer's offset mapping),
whatever the tokenizer, instead of guessing token positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from umr.items import Item
from umr.models.recipe import Recipe

_FIELD = re.compile(r"\{(instruction|image|text|summary)\}")
SUMMARY = {"text": "sentence", "image": "image", "image,text": "image and sentence", "video": "video",
           "video,text": "video and sentence"}


@dataclass
class Rendered:
    text: str
    instruction_span: tuple[int, int] | None  # [start, end) in characters, None when there is no instruction


def render(recipe: Recipe, item: Item, image_strings: list[str]) -> Rendered:
    """Fill the recipe template. image_strings: one (already expanded) placeholder string per image/frame."""
    instruction = item.instruction or recipe.default_instruction
    parts: list[str] = []
    span: tuple[int, int] | None = None
    pos = 0
    for match in _FIELD.finditer(recipe.template):
        parts.append(recipe.template[pos:match.start()])
        key = match.group(1)
        if key == "instruction":
            if instruction:
                formatted = recipe.instruction_format.format(instruction=instruction)
                if item.instruction:  # a default system prompt is not the query's instruction
                    # Surrounding white space stays out: a byte-level BPE glues it to the next word's token.
                    start = sum(map(len, parts)) + len(formatted) - len(formatted.lstrip())
                    span = (start, start + len(formatted.strip()))
                parts.append(formatted)
        elif key == "image":
            parts.append("".join(image_strings))
        elif key == "text":
            parts.append(item.text or "")
        else:
            parts.append(SUMMARY[item.modality])
        pos = match.end()
    parts.append(recipe.template[pos:])
    return Rendered("".join(parts), span)


def span_token_mask(offsets: list[tuple[int, int]], span: tuple[int, int] | None) -> list[bool]:
    """True for tokens whose characters overlap the span (zero-length special tokens never do)."""
    if span is None:
        return [False] * len(offsets)
    s, e = span
    return [start < e and end > s for start, end in offsets]


def expand_placeholder(placeholder: str, pad_token: str, count: int) -> str:
    """One image's placeholder with its pad token repeated `count` times (what a full processor does)."""
    if pad_token not in placeholder:
        raise ValueError(f"image placeholder {placeholder!r} must contain the image token {pad_token!r}")
    return placeholder.replace(pad_token, pad_token * count, 1)

