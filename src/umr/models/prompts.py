"""Render an Item into the prompt string its recipe's official inference code builds.

Each published model was trained with one exact input string, quirks included (a trailing space, a missing
capital, an extra generation prompt): a different string gives a different vector. So each recipe names a
prompt *style*, a small function here that transcribes its reference code (docs/recipes.md cites the lines):

  gme       instruction in the chat's system slot, ends with <|endoftext|>        (gme_inference.py)
  lamra     chat + "Summarize above … in one word: " + "<emb>." + generation tail (LamRA / U-MARVEL eval)
  mm-embed  "Instruct: {instruction}\\nQuery: <image>\\n{text}"                    (modeling_nvmmembed.py)
  template  the recipe's own `template` string (custom recipes)

Queries and documents are told apart by the item's role (`Item.is_query`; `Embedder.encode_query` and
`encode_document` set it), not by whether an instruction is there: a query without an instruction is still a
query to MM-Embed (its "Query: " prefix) and to LamRA (an image-only query's summary says "image").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from umr.errors import UmrError
from umr.items import Item
from umr.models.recipe import Recipe

_FIELD = re.compile(r"\{(instruction|image|text|summary)\}")
SUMMARY = {"text": "sentence", "image": "image", "image,text": "image and sentence", "video": "video",
           "video,text": "video and sentence"}
CHAT_SYSTEM = "<|im_start|>system\n{system}<|im_end|>\n"


@dataclass
class Rendered:
    text: str
    instruction_span: tuple[int, int] | None = None  # [start, end) characters of the instruction ("template")
    pool_prefix: str | None = None  # mm-embed: pooling skips as many tokens as this string tokenises to


def uniir_format(text: str | None) -> str:
    """UniIR's `format_string`, which LamRA and U-MARVEL apply to every text they embed: drop carriage
    returns, strip white space and outer double quotes, capitalise the first character, end with a period."""
    s = (text or "").replace("\r", "").strip().strip('"')
    if s:
        s = s[0].upper() + s[1:]
        if s[-1] not in ".?!":
            s += "."
    return s


def render(recipe: Recipe, item: Item, image_strings: list[str]) -> Rendered:
    """The prompt for one item. image_strings: one (already expanded) placeholder string per image/frame."""
    style = STYLES.get(recipe.prompt)
    if style is None:
        raise UmrError(f"recipe {recipe.name!r}: unknown prompt style {recipe.prompt!r}; one of {sorted(STYLES)}")
    return style(recipe, item, "".join(image_strings))


def _gme(recipe: Recipe, item: Item, images: str) -> Rendered:
    system = item.instruction or recipe.system_prompt or ""
    return Rendered(f"{CHAT_SYSTEM.format(system=system)}<|im_start|>user\n{images}{item.text or ''}<|im_end|>\n"
                    "<|im_start|>assistant\n<|endoftext|>")


def _lamra(recipe: Recipe, item: Item, images: str) -> Rendered:
    """LamRA's and U-MARVEL's eval datasets: the query text is format_string("{instruction} {text}") with the
    instruction itself already formatted (and, for U-MARVEL, wrapped in its marker tokens); the summary line
    names what is left once formatted. The chat template adds the generation prompt after "<emb>."."""
    fmt = uniir_format if recipe.text_format == "uniir" else (lambda s: (s or "").strip())
    if item.instruction:
        instruction = fmt(item.instruction)
        if recipe.instruction_markers:
            start, end = recipe.instruction_markers
            instruction = f"{start}{instruction}{end}"
        text = fmt(f"{instruction} {item.text or ''}")
    else:
        text = fmt(item.text)
    if images and text:
        summary = "image and sentence"
    elif images:
        # Image-only queries say "image"; image-only candidates too in LamRA, but U-MARVEL's candidate set keeps
        # the empty text, so its candidates say "image and sentence" (recipe.image_only_summary).
        summary = "image" if item.is_query else recipe.image_only_summary
    else:
        summary = "sentence"
    system = CHAT_SYSTEM.format(system=recipe.system_prompt or "You are a helpful assistant.")
    return Rendered(f"{system}<|im_start|>user\n{images}{text}\nSummarize above {summary} in one word: <|im_end|>\n"
                    "<|im_start|>assistant\n<emb>.<|im_end|>\n<|im_start|>assistant\n")


def _mm_embed(recipe: Recipe, item: Item, images: str) -> Rendered:
    """NVMMEmbedModel.encode: queries start "Query: " (after "Instruct: …\\n" when there is an instruction);
    candidates are the image then the text. Pooling skips the tokens of "Instruct: {instruction}" (BOS and,
    with the tokenizer's EOS, one token more: the "\\n"), as the reference counts them."""
    text = item.text or ""
    if not item.is_query:
        return Rendered(f"{images}{text}")
    if item.instruction:
        prefix = f"Instruct: {item.instruction}"
        return Rendered(f"{prefix}\n{recipe.query_prefix}{images}{text}", pool_prefix=prefix)
    return Rendered(f"{recipe.query_prefix}{images}{text}")


def _template(recipe: Recipe, item: Item, images: str) -> Rendered:
    instruction = item.instruction or recipe.system_prompt
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
            parts.append(images)
        elif key == "text":
            parts.append(item.text or "")
        else:
            parts.append(SUMMARY[item.modality])
        pos = match.end()
    parts.append(recipe.template[pos:])
    return Rendered("".join(parts), span)


STYLES = {"gme": _gme, "lamra": _lamra, "mm-embed": _mm_embed, "template": _template}


def span_token_mask(offsets: list[tuple[int, int]], span: tuple[int, int] | None) -> list[bool]:
    """True for tokens whose characters overlap the span (zero-length special tokens never do)."""
    if span is None:
        return [False] * len(offsets)
    s, e = span
    return [start < e and end > s for start, end in offsets]


def expand_placeholder(placeholder: str, pad_token: str, count: int) -> str:
    """One image's placeholder with its pad token repeated `count` times (what a full processor does)."""
    if pad_token not in placeholder:
        raise UmrError(f"image placeholder {placeholder!r} must contain the image token {pad_token!r}")
    return placeholder.replace(pad_token, pad_token * count, 1)
