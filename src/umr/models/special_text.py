"""User text that holds a model's own special tokens (`<|image_pad|>`, `<image>`, `<|im_end|>`, `</s>` …).

The official inference code of every recipe here (GME, LamRA, U-MARVEL, MM-Embed) formats user text into its
prompt string and tokenizes the whole string, so such text is read as markup: an image-slot token without an
image breaks the forward ("image features and image tokens do not match"), a turn or sequence end silently
changes the vector. umr refuses it instead, naming the item: `umr embed --skip-bad` lists it in rejected.jsonl,
the server answers 422, and `umr embed` / `umr index build` without --skip-bad stop with one line naming it.
"""

from __future__ import annotations

from typing import Any

from umr.items import Item, ItemError


def special_tokens(tokenizer: Any) -> tuple[str, ...]:
    """The tokenizer's special tokens as text, longest first (cached on the tokenizer: it never changes them)."""
    cached = getattr(tokenizer, "_umr_special_text", None)
    if cached is None:
        found = set(getattr(tokenizer, "all_special_tokens", []))
        found |= {t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.special}
        cached = tuple(sorted((t for t in found if t), key=lambda t: (-len(t), t)))
        tokenizer._umr_special_text = cached
    return cached


def special_text_problem(tokenizer: Any, item: Item) -> str | None:
    """Why `item` cannot be embedded as it is (its text or instruction holds a special token), or None."""
    tokens = special_tokens(tokenizer)
    for field in ("text", "instruction"):
        value = getattr(item, field, None)
        if value:
            hit = next((t for t in tokens if t in value), None)
            if hit is not None:
                return (f"its {field} holds the model's special token {hit!r}, which the model would read as "
                        "markup (an image slot, a turn end); remove it from the text")
    return None


def check_special_text(tokenizer: Any, items: Any) -> None:
    """ItemError naming the first item whose text holds a special token."""
    for item in items:
        problem = special_text_problem(tokenizer, item)
        if problem is not None:
            raise ItemError(item, problem)
