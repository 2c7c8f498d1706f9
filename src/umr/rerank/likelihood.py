"""Caption-likelihood scoring: a judge pretrained as a captioner scores a pair by how much more likely the pair's
text is after the pair's image than on its own (pointwise mutual information, in nats):

    score(q, c) = log P(text | image side) − log P(text)

Only a pair of an image alone and a text alone is a caption: text → image scores the query's text after the
candidate's image, image → text the candidate's text after the query's image. Every other pair (an image on both
sides or on neither, or an image with text: an entity card, a question about an image) gets 0, so fusing leaves
its candidates in the retriever's order: the judge learned captions, and on those pairs it was measured at chance
(docs/quality.md §11).

Why a likelihood and not P(Yes): a tiny judge pretrained to caption reads every attribute of an image from the
caption's tokens (colour, size, position, pattern, shape: docs/quality.md §11), while a yes/no head trained on
top of the same judge reads hardly more than background. Dividing by P(text) keeps a caption that is likely after
any image (short, common words) from winning for that reason alone (VisualGPTScore, Lin et al. 2023); the judge
learns P(text) in the same training, from captions whose image was dropped.

Layout (token ids, each part tokenised on its own so the scored span is the same with and without a condition):
`[image placeholder][condition text] "\n" [text] "\n"`, and without a condition `"\n" [text] "\n"`; the scored
tokens are the text's and the closing newline's (the caption says it is complete).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from umr.items import Item
from umr.models.prompts import expand_placeholder
from umr.models.special_text import check_special_text

if TYPE_CHECKING:
    from umr.rerank.prompted import Reranker

#: (condition: the image side, or None for the text's prior; the text scored after it)
Caption = tuple[Item | None, str]


def caption_of(query: Item, candidate: Item) -> tuple[Item, str] | None:
    """(image, caption) of a pair whose one side is an image alone and the other a text alone, else None."""
    def image_only(item: Item) -> bool:
        return item.image is not None and not item.text

    def text_only(item: Item) -> bool:
        return item.image is None and bool(item.text)

    if text_only(query) and image_only(candidate):
        return candidate, query.text or ""
    if image_only(query) and text_only(candidate):
        return query, candidate.text or ""
    return None


def drop_images(rows: Sequence[Caption], rng: random.Random, share: float) -> list[Caption]:
    """The rows with each condition dropped with probability `share` (one draw a row, in order): the captions a
    judge learns P(text) from, beside P(text | image)."""
    return [(None, text) if rng.random() < share else (cond, text) for cond, text in rows]


def caption_batch(rr: Reranker, rows: Sequence[Caption]) -> tuple[dict[str, Any], torch.Tensor]:
    """Right-padded model inputs for (condition, text) rows, and a [b, L] mask of the scored target tokens
    (a target at position t is predicted by the hidden state at t − 1)."""
    # a text holding "<|image_pad|>" would become image slots: refused, naming the item, as the prompt styles do
    check_special_text(rr.tokenizer, [c for c, _ in rows if c is not None] + [Item(text=t) for _, t in rows if t])
    images = [cond.load_image() for cond, _ in rows if cond is not None and cond.image is not None]
    batch, counts = rr.backbone.pixel_batch(images)
    count = iter(counts)
    ids, scored, newline = [], [], tokens(rr, "\n")
    for cond, text in rows:
        prefix: list[int] = []
        if cond is not None:
            vision = expand_placeholder(rr.placeholder, rr.backbone.image_token, next(count)) if cond.image else ""
            prefix = tokens(rr, vision + (cond.text or ""))
        target = tokens(rr, text) + newline
        ids.append(prefix + newline + target)
        scored.append([False] * (len(prefix) + len(newline)) + [True] * len(target))
    width = max(map(len, ids))
    pad = rr.tokenizer.pad_token_id if rr.tokenizer.pad_token_id is not None else 0
    batch["input_ids"] = torch.tensor([row + [pad] * (width - len(row)) for row in ids])
    batch["attention_mask"] = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids])
    mask = torch.tensor([row + [False] * (width - len(row)) for row in scored])
    moved = {k: v.to(rr.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return moved, mask.to(rr.device)


def tokens(rr: Reranker, text: str) -> list[int]:
    return list(rr.tokenizer(text, add_special_tokens=False)["input_ids"])


def text_log_likelihood(rr: Reranker, rows: Sequence[Caption]) -> tuple[torch.Tensor, torch.Tensor]:
    """([b] log P(text | condition) summed over each row's scored tokens, [b] their counts); differentiable when
    grad is on. The LM head runs on the scored positions only (a real vocabulary is 150k wide)."""
    batch, mask = caption_batch(rr, rows)
    hidden = rr.backbone.hidden_states(batch)
    targets = mask[:, 1:]
    logits = rr.model.get_output_embeddings()(hidden[:, :-1][targets]).float()
    picked = logits.log_softmax(-1).gather(-1, batch["input_ids"][:, 1:][targets][:, None]).squeeze(-1)
    row = torch.arange(len(rows), device=hidden.device)[:, None].expand_as(targets)[targets]
    sums = torch.zeros(len(rows), device=hidden.device, dtype=picked.dtype).index_add(0, row, picked)
    return sums, targets.sum(1)


def caption_loss(rr: Reranker, rows: Sequence[Caption]) -> torch.Tensor:
    """Captioning loss: the mean negative log-likelihood per scored token over the rows."""
    sums, counts = text_log_likelihood(rr, rows)
    return -sums.sum() / counts.sum().clamp(min=1)


def caption_pmi(rr: Reranker, pairs: Sequence[tuple[Item, Item]]) -> np.ndarray:
    """score(q, c) for each pair (module docstring) → float32 [n]; 0 where a pair has no caption to score."""
    out = np.zeros(len(pairs), dtype=np.float32)
    split = [(i, caption_of(q, c)) for i, (q, c) in enumerate(pairs)]
    todo = [(i, cap) for i, cap in split if cap is not None]
    half = max(1, rr.batch_size // 2)  # each pair is two rows: with its condition and without
    with torch.inference_mode():
        for start in range(0, len(todo), half):
            chunk = todo[start:start + half]
            rows: list[Caption] = [cap for _, cap in chunk] + [(None, text) for _, (_, text) in chunk]
            ll = text_log_likelihood(rr, rows)[0].double().cpu().numpy()
            out[[i for i, _ in chunk]] = ll[:len(chunk)] - ll[len(chunk):]
    return out
