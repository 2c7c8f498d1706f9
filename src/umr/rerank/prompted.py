"""`Reranker`: an MLLM judges (query, candidate) pairs; the score is P(Yes) of its first generated token.

    rr = Reranker("tiny:gme")                      # any Qwen2-VL / Qwen2.5-VL / LLaVA-NeXT instruct MLLM
    p = rr.score(Item(text="a red circle", instruction="Find the image"), [Item(image="a.png"), ...])

One forward per pair: the prompt ends where the assistant's answer starts, the LM head reads the last prompt
token's hidden state, and P(Yes) = softmax([logit(Yes), logit(No)])[0] — the two-way softmax over the first
token of "Yes" and of "No", so the score does not depend on how much mass the model puts on other tokens.
Zero-shot with an instruct MLLM (MM-Embed), or after point-wise training (`umr.train.reranker`, U-MARVEL).

The prompt is a *style* (`umr.rerank.styles`): "umr" is umr's own (the default), "lamra" LamRA-Rank's and
U-MARVEL's official re-ranking code, P(Yes) equal to theirs (tests/rerank/test_rerank_parity.py).
Inputs are assembled as the embedder assembles them (`umr.models.backbones`: image processor → expanded
image tokens → one prompt string), with causal attention and M-RoPE, which is what generation uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from umr.errors import UmrError
from umr.items import Item
from umr.models.backbone_loader import load_backbone
from umr.models.backbones import Backbone, save_hf_folder
from umr.models.base import resolve_device, resolve_dtype
from umr.models.prompts import expand_placeholder
from umr.models.recipe import get_recipe, recipe_for_checkpoint
from umr.models.special_text import check_special_text
from umr.rerank.styles import TEMPLATES, resolve_style

#: HF model_type → backbone family
FAMILY_OF = {"qwen2_vl": "qwen2-vl", "qwen2_5_vl": "qwen2-vl", "llava_next": "llava-next"}


def _images(item: Item) -> list[Image.Image]:
    return [item.load_image()] if item.image is not None else []


class Reranker:
    """Point-wise MLLM re-ranker; `score` returns P(Yes) per candidate (float32, in [0, 1])."""

    def __init__(self, model: str | Path, device: str | None = None, dtype: str | None = None, yes: str = "Yes",
                 no: str = "No", batch_size: int = 8, style: str | None = None) -> None:
        from transformers import AutoConfig, AutoTokenizer

        from umr.models.mllm import local_model_dir
        from umr.models.registry import MODEL_TYPE_RECIPE, tiny_model_dir

        name = str(model)
        if name.startswith("tiny:"):
            name = str(tiny_model_dir(name.split(":", 1)[1]))
        self.model_path = local_model_dir(name)
        model_type = AutoConfig.from_pretrained(self.model_path).model_type
        if model_type not in FAMILY_OF:
            raise UmrError(f"{self.model_path}: re-ranking needs a Qwen2-VL, Qwen2.5-VL or LLaVA-NeXT model, "
                           f"this is {model_type!r}")
        self.family = FAMILY_OF[model_type]
        self.style = resolve_style(str(model), Path(self.model_path), self.family, style)
        declared, overrides = recipe_for_checkpoint(self.model_path)
        # The checkpoint's recipe keeps its image-token budget unless the style's official code sets one;
        # generation runs causal, with the positions the base MLLM was pretrained with (M-RoPE), not the 1-D
        # ones the published embedders were tuned with.
        recipe = get_recipe(declared or MODEL_TYPE_RECIPE[model_type], overrides).with_overrides(
            {"attention": "causal", "positions": "mrope", "image_newline": False, **self.style.recipe_overrides})
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.tokenizer.padding_side = "right"
        self.backbone: Backbone = load_backbone(self.model_path, recipe, self.dtype, with_lm_head=True)
        self.backbone.model.to(self.device).eval()
        self.template, self.placeholder = TEMPLATES[self.family]
        self.yes_id, self.no_id = self._first_token(yes), self._first_token(no)
        if self.yes_id == self.no_id:
            raise UmrError(f"{yes!r} and {no!r} start with the same token; choose other answer words")
        self.batch_size = batch_size
        self.repetition_penalty = _repetition_penalty(self.model_path) if self.style.generation_penalty else 1.0

    @property
    def model(self) -> torch.nn.Module:
        return self.backbone.model

    def _first_token(self, word: str) -> int:
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        if not ids:
            raise UmrError(f"answer word {word!r} encodes to no token")
        return int(ids[0])

    # -- inputs ----------------------------------------------------------------------------------------------
    def prompt(self, query: Item, candidate: Item, query_image_tokens: int = 0,
               candidate_image_tokens: int = 0) -> str:
        """The full prompt string for one pair; image token counts come from the image processor."""
        def vis(item: Item, n: int) -> str:
            return expand_placeholder(self.placeholder, self.backbone.image_token, n) if item.image is not None else ""

        body = self.style.body(query, candidate, vis(query, query_image_tokens),
                               vis(candidate, candidate_image_tokens))
        return self.template.format(body=body)

    def prepare(self, pairs: Sequence[tuple[Item, Item]]) -> dict[str, Any]:
        """Tokenised, padded (right) model inputs for a batch of (query, candidate) pairs."""
        check_special_text(self.tokenizer, [it for pair in pairs for it in pair])
        per_pair = [(_images(q), _images(c)) for q, c in pairs]
        batch, counts = self.backbone.pixel_batch([img for qi, ci in per_pair for img in qi + ci])
        it = iter(counts)
        texts = []
        for (q, c), (qi, ci) in zip(pairs, per_pair):
            nq = next(it) if qi else 0
            nc = next(it) if ci else 0
            texts.append(self.prompt(q, c, nq, nc))
        enc = self.tokenizer(texts, padding=True, return_tensors="pt")
        batch.update(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    # -- scoring ---------------------------------------------------------------------------------------------
    def yes_no_logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """[b, 2] logits of (Yes, No) for the first answer token; differentiable when grad is on (training)."""
        return self.answer_logits(self.backbone.hidden_states(batch), batch["attention_mask"])

    def answer_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[b, 2] (Yes, No) logits from the hidden states [b, L, h] of a right-padded batch."""
        last = attention_mask.sum(1) - 1  # right padding: the last real token predicts the answer
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        weight = self.backbone.model.get_output_embeddings().weight  # only two rows are needed: not the full head
        bias = getattr(self.backbone.model.get_output_embeddings(), "bias", None)
        rows = torch.tensor([self.yes_id, self.no_id], device=h.device)
        logits = h @ weight[rows].T
        return (logits + bias[rows] if bias is not None else logits).float()

    def penalise_repeats(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """[b, 2] Yes/No logits as `generate` hands them to the official code in `scores[0]`: the checkpoint's
        repetition penalty divides a positive logit (multiplies a negative one) of a token already in the
        prompt. Padding is not prompt: the official score is a batch of one's."""
        rows = torch.tensor([self.yes_id, self.no_id], device=logits.device)
        real = batch["attention_mask"].bool().unsqueeze(-1)
        seen = ((batch["input_ids"].unsqueeze(-1) == rows) & real).any(1)  # [b, 2]
        p = self.repetition_penalty
        return torch.where(seen, torch.where(logits < 0, logits * p, logits / p), logits)

    def score_pairs(self, pairs: Sequence[tuple[Item, Item]]) -> np.ndarray:
        """P(Yes) for each (query, candidate) pair → float32 [n] (the caption style: its likelihood score)."""
        if self.style.scoring == "caption-pmi":
            from umr.rerank.likelihood import caption_pmi

            return caption_pmi(self, pairs)
        out = np.zeros(len(pairs), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(pairs), self.batch_size):
                chunk = pairs[start:start + self.batch_size]
                batch = self.prepare(chunk)
                logits = self.yes_no_logits(batch)
                if self.repetition_penalty != 1.0:
                    logits = self.penalise_repeats(logits, batch)
                out[start:start + len(chunk)] = torch.softmax(logits, dim=-1)[:, 0].cpu().numpy()
        return out

    def score(self, query: Item, candidates: Sequence[Item]) -> np.ndarray:
        """P(Yes) of each candidate for one query → float32 [len(candidates)]."""
        return self.score_pairs([(query, c) for c in candidates])

    def describe(self) -> dict[str, Any]:
        return {"reranker": self.model_path, "family": self.family, "style": self.style.name, "yes_id": self.yes_id,
                "no_id": self.no_id}

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Model, tokenizer, image processor and the recipe marker: a folder `Reranker(out_dir)` loads."""
        out = save_hf_folder(out_dir, self.backbone, self.tokenizer)
        marker = Path(self.model_path) / "umr_recipe.json"
        if marker.is_file():
            (out / "umr_recipe.json").write_text(marker.read_text())
        (out / "umr_reranker.json").write_text(json.dumps(self.describe(), indent=1) + "\n")
        return out


def _repetition_penalty(folder: str) -> float:
    """The checkpoint's generation_config repetition_penalty (1.0 without one): what `generate` applies."""
    from transformers import GenerationConfig

    if not (Path(folder) / "generation_config.json").is_file():
        return 1.0
    return float(GenerationConfig.from_pretrained(folder).repetition_penalty or 1.0)
