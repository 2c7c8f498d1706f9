"""Prompt styles of the point-wise re-ranker: the input string (and scoring quirks) of each re-ranking code.

  umr    umr's own judge prompt (task line, "Query:", "Candidate:", a Yes/No question); no official code has
         it. The default: the tiny judges learn with it and not with LamRA's (docs/recipes.md, "Re-ranker"),
         and MM-Embed's zero-shot re-ranking (LLaVA-NeXT) is described in its paper with no public code.
  lamra  LamRA-Rank's and U-MARVEL's point-wise re-ranker, the official code of both (GitHub Code-kunkun/LamRA
         and chaxjli/U-MARVEL: dataset/datasets_mbeir_eval_rerank.py, collators/eval_rerank.py,
         eval/eval_mbeir_rerank_pointwise.py). Qwen2-VL / Qwen2.5-VL only. Chosen by name (alias "u-marvel"),
         and by default for the published LamRA-Rank checkpoint.
  caption umr's captioning judge (`tiny:judge@64x2+pre`): no question; the score is the caption's likelihood
         after the image over its likelihood alone (umr.rerank.likelihood), not P(Yes).

docs/recipes.md ("Re-ranker") lists the reference lines and every quirk each style keeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umr.errors import UmrError
from umr.items import Item
from umr.models.prompts import uniir_format

QWEN_CHAT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{body}<|im_end|>\n"
             "<|im_start|>assistant\n")
#: family → (the turn around the user's body, one image's placeholder)
TEMPLATES = {
    "qwen2-vl": (QWEN_CHAT, "<|vision_start|><|image_pad|><|vision_end|>"),
    "llava-next": ("[INST] {body} [/INST]", "<image>\n"),
}
QUESTION = "Is the candidate relevant to the query? Answer Yes or No."
# LamRA's text item, as Python reads it: the source breaks the literal with a backslash-newline, so the
# 24 spaces of the next line's indent stay inside it; "responed" is the source's spelling.
LAMRA_INSTRUCTION = ("I will provide you with a query and a candidate. Please evaluate whether the candidate"
                     + " " * 24 + "meets the requirements of the query. If it does, respond with 'Yes'; "
                     "if it doesn't, responed with 'No'.")
#: published re-ranker checkpoints whose official code is known → style
PUBLISHED = {"code-kunkun/LamRA-Rank": "lamra"}


def umr_body(query: Item, candidate: Item, query_images: str, candidate_images: str) -> str:
    """The user turn: task instruction (if any), query, candidate, then the Yes/No question."""
    head = "Judge whether the candidate is relevant to the query.\n"
    if query.instruction:
        head += f"Task: {query.instruction}\n"
    return (f"{head}Query: {query_images}{query.text or ''}\nCandidate: {candidate_images}{candidate.text or ''}\n"
            f"{QUESTION}")


def lamra_body(query: Item, candidate: Item, query_images: str, candidate_images: str) -> str:
    """`construct_rerank_messages` through Qwen2-VL's chat template, which joins the content items with nothing
    between them: instruction, "Query:", [image], text, "Candidate:", [image], text. Texts go through UniIR's
    format_string: the query's as `format_string(f"{format_string(instruction)} {text}")` (`get_instance`)."""
    query_text = uniir_format(f"{uniir_format(query.instruction)} {query.text or ''}")
    return (f"{LAMRA_INSTRUCTION}Query:{query_images}{query_text}"
            f"Candidate:{candidate_images}{uniir_format(candidate.text)}")


def caption_body(query: Item, candidate: Item, query_images: str, candidate_images: str) -> str:
    """The caption style's pair as one string (its scores come from umr.rerank.likelihood's own layout)."""
    return f"{query_images}{query.text or ''}\n{candidate_images}{candidate.text or ''}\n"


@dataclass(frozen=True)
class RerankStyle:
    name: str
    body: Callable[[Item, Item, str, str], str]  # (query, candidate, query images, candidate images) → user body
    families: tuple[str, ...]  # backbone families whose official code this is
    # Recipe settings the official code's image pipeline implies (None: the checkpoint's recipe decides).
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    # The score is read from `generate(...).scores[0]`: the checkpoint's generation_config processors apply
    # (for a greedy first token, only its repetition_penalty changes the Yes/No logits).
    generation_penalty: bool = False
    # "yes-no": P(Yes) of the first answer token; "caption-pmi": the text's likelihood after the image side over
    # its likelihood alone (umr.rerank.likelihood), for a judge pretrained as a captioner.
    scoring: str = "yes-no"


STYLES = {
    "umr": RerankStyle("umr", umr_body, ("qwen2-vl", "llava-next")),
    # qwen2_vision_process.fetch_image: 4..300 tokens of 28×28 px, then the processor at its own limits.
    "lamra": RerankStyle("lamra", lamra_body, ("qwen2-vl",),
                         {"image_pre_resize": [4, 300], "min_image_tokens": None, "max_image_tokens": None},
                         generation_penalty=True),
}
STYLES["caption"] = RerankStyle("caption", caption_body, ("qwen2-vl",), scoring="caption-pmi")
STYLES["u-marvel"] = STYLES["lamra"]  # U-MARVEL's re-ranker code is LamRA's (same dataset, collator, scoring)


def resolve_style(name: str, folder: Path, family: str, style: str | None) -> RerankStyle:
    """The style asked for; else the one a saved judge records (umr_reranker.json; a judge saved before
    styles existed was trained with "umr"); else a published checkpoint's; else "umr"."""
    if style is None:
        marker = folder / "umr_reranker.json"
        saved = json.loads(marker.read_text()) if marker.is_file() else {}
        style = saved.get("style", "umr") if saved else PUBLISHED.get(name, "umr")
    if style not in STYLES:
        raise UmrError(f"unknown re-ranker style {style!r}; one of {', '.join(sorted(STYLES))}")
    chosen = STYLES[style]
    if family not in chosen.families:
        raise UmrError(f"re-ranker style {style!r} is {'/'.join(chosen.families)} only; {folder} is {family}")
    return chosen
