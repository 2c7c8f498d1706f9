"""`MLLMEmbedder`: one embedder for GME, U-MARVEL, LamRA and MM-Embed, configured by a Recipe.

prepare(): load images (errors name the item) → image processor → expand image tokens → render each
item's prompt → tokenise with offsets → masks (padding, and pooling without the instruction span).
forward(): backbone hidden states → the recipe's pooling.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from umr.items import Item, ItemError
from umr.models import pooling as P
from umr.models.backbones import Backbone, load_backbone, save_hf_folder
from umr.models.base import Embedder, resolve_device, resolve_dtype
from umr.models.prompts import expand_placeholder, render, span_token_mask
from umr.models.recipe import Recipe, write_recipe_marker

log = logging.getLogger(__name__)


def local_model_dir(name_or_dir: str) -> str:
    """A local folder as-is; a hub id is downloaded once (needs internet) and its cache folder returned."""
    if Path(name_or_dir).is_dir():
        return str(name_or_dir)
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name_or_dir)
    except Exception as exc:  # offline, unknown id, no access: all mean "cannot get this model"
        raise ValueError(f"model {name_or_dir!r} is not a local folder and could not be downloaded "
                         f"({type(exc).__name__}); give a local directory or check the hub id / network") from exc


class MLLMEmbedder(Embedder):
    def __init__(self, model: str, recipe: Recipe, device: str | None = None, dtype: str | None = None) -> None:
        from transformers import AutoTokenizer

        self.recipe = recipe
        self.name = recipe.name
        self.model_path = local_model_dir(model)
        self._device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self._device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.tokenizer.padding_side = "right"
        self.backbone: Backbone = load_backbone(self.model_path, recipe, self.dtype)
        self._ensure_tokens()
        self.pooler: P.LatentAttentionPooling | None = None
        if recipe.pooling == "latent_attention":
            self.pooler = P.LatentAttentionPooling.load(self.model_path)
            if self.pooler is None:
                log.warning("%s has no latent-attention head; starting a random one (train it before use)", model)
                self.pooler = P.LatentAttentionPooling(self.backbone.hidden_size, recipe.num_latents,
                                                       recipe.latent_heads)
            self.pooler.to(self._device, self.dtype).eval()
        self.backbone.model.to(self._device).eval()
        self.max_batch_tokens = 8192 if self._device.type == "cpu" else 65536
        self._pool_token_id = (self.tokenizer.convert_tokens_to_ids(recipe.pool_token)
                               if recipe.pool_token else None)

    # -- contract --------------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.backbone.hidden_size

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def model(self) -> torch.nn.Module:
        return self.backbone.model

    def cost(self, item: Item) -> int:
        visuals = 0 if item.image is None else 1
        if item.video is not None:
            visuals += self.recipe.max_frames
        return 48 + len(item.text or "") // 3 + visuals * self.backbone.estimate_image_tokens()

    def prepare(self, items: Sequence[Item]) -> dict[str, Any]:
        per_item = [self._visuals(it) for it in items]
        flat = [img for imgs in per_item for img in imgs]
        batch: dict[str, Any] = {}
        counts: list[int] = []
        if flat:
            pixels, counts = self.backbone.process_images(flat)
            batch.update(pixels)
        texts, spans = [], []
        next_image = iter(counts)
        for item, imgs in zip(items, per_item):
            strings = [expand_placeholder(self.recipe.image_placeholder, self.backbone.image_token, next(next_image))
                       for _ in imgs]
            rendered = render(self.recipe, item, strings)
            texts.append(rendered.text)
            spans.append(rendered.instruction_span)
        enc = self.tokenizer(texts, padding=True, return_offsets_mapping=True, return_tensors="pt")
        lengths = enc["attention_mask"].sum(1).tolist()
        for item, n in zip(items, lengths):
            if n > self.recipe.max_length:
                raise ItemError(item, f"prompt is {n} tokens, over the recipe's max_length {self.recipe.max_length}",
                                "shorten the text or lower the image-token budget")
        pool_mask = enc["attention_mask"].clone()
        if self.recipe.exclude_instruction:
            for row, (offsets, span) in enumerate(zip(enc["offset_mapping"].tolist(), spans)):
                drop = torch.tensor(span_token_mask([tuple(o) for o in offsets], span))
                pool_mask[row, drop] = 0
        batch.update(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pool_mask=pool_mask)
        return {k: v.to(self._device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        hidden = self.backbone.hidden_states(batch)
        return self.pool(hidden, batch)

    def pool(self, hidden: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        how = self.recipe.pooling
        if how == "last":
            return P.last_token(hidden, batch["attention_mask"])
        if how == "mean":
            return P.masked_mean(hidden, batch["pool_mask"])
        if how == "before_token":
            return P.before_token(hidden, batch["input_ids"], self._pool_token_id)
        if how == "latent_attention":
            return self.pooler(hidden, batch["pool_mask"])
        raise ValueError(f"pooling {how!r} is not for MLLM backbones")

    # -- helpers ---------------------------------------------------------------------------------------------
    def _visuals(self, item: Item) -> list[Image.Image]:
        images = [item.load_image()] if item.image is not None else []
        if item.video is not None:
            images += item.load_frames(max_frames=self.recipe.max_frames)
        if images and not self.recipe.image_placeholder:
            raise ItemError(item, f"recipe {self.recipe.name!r} has no image placeholder, so it cannot take images")
        return images

    def _ensure_tokens(self) -> None:
        """Recipes that need extra tokens (<emb>, instruction bounds) get them, with a warning when new:
        their embedding rows are untrained until the model is fine-tuned with this recipe."""
        vocab = self.tokenizer.get_vocab()
        missing = [t for t in self.recipe.added_tokens if t not in vocab]
        if missing:
            log.warning("adding %s to the vocabulary of %s (untrained rows)", missing, self.model_path)
            self.tokenizer.add_special_tokens({"additional_special_tokens": missing},
                                              replace_additional_special_tokens=False)
            self.backbone.model.resize_token_embeddings(len(self.tokenizer))

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """An ordinary HF folder plus umr_recipe.json (and the pooling head) that load_embedder reads."""
        out = save_hf_folder(out_dir, self.backbone, self.tokenizer)
        if self.pooler is not None:
            self.pooler.save(out)
        write_recipe_marker(out, self.recipe)
        return out

    def describe(self) -> dict[str, Any]:
        r = self.recipe
        return {"name": r.name, "dim": self.dim, "model": self.model_path, "family": r.family,
                "attention": r.attention, "pooling": r.pooling, "exclude_instruction": r.exclude_instruction,
                "dtype": str(self.dtype).replace("torch.", "")}
