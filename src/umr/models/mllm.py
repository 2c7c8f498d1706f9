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

from umr.errors import UmrError
from umr.items import Item, ItemError
from umr.models import pooling as P
from umr.models.backbone_loader import load_backbone
from umr.models.backbones import Backbone, save_hf_folder
from umr.models.base import Embedder, resolve_device, resolve_dtype
from umr.models.fingerprint import weights_fingerprint
from umr.models.prompts import Rendered, expand_placeholder, render, span_token_mask
from umr.models.recipe import Recipe, write_recipe_marker
from umr.models.special_text import check_special_text, special_text_problem

log = logging.getLogger(__name__)


def local_model_dir(name_or_dir: str) -> str:
    """A local folder as-is; a hub id is downloaded once (needs internet) and its cache folder returned."""
    if Path(name_or_dir).is_dir():
        return str(name_or_dir)
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name_or_dir)
    except Exception as exc:  # offline, unknown id, no access: all mean "cannot get this model"
        raise UmrError(f"model {name_or_dir!r} is not a local folder and could not be downloaded "
                       f"({type(exc).__name__}); give a local directory or check the hub id / network") from exc


class MLLMEmbedder(Embedder):
    parallel_prepare = True  # image loading, resizing and the processor dominate prepare

    def __init__(self, model: str, recipe: Recipe, device: str | None = None, dtype: str | None = None) -> None:
        from transformers import AutoTokenizer

        self.recipe = recipe
        self.name = recipe.name
        self.model_path = local_model_dir(model)
        self._device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self._device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.tokenizer.padding_side = "right"  # every reference pads right (1-D positions depend on it)
        if recipe.tokenizer_add_eos is not None:
            self.tokenizer.add_eos_token = recipe.tokenizer_add_eos
        self.backbone: Backbone = load_backbone(self.model_path, recipe, self.dtype)
        self._ensure_tokens()
        self.pooler: P.LatentAttentionPooling | None = None
        if recipe.pooling == "latent_attention":
            self.pooler = P.LatentAttentionPooling.load(self.model_path, recipe.latent_heads)
            if self.pooler is None:
                log.warning("%s has no latent-attention head; starting a random one (train it before use)", model)
                self.pooler = P.LatentAttentionPooling(self.backbone.hidden_size, recipe.num_latents,
                                                       recipe.latent_heads)
            self.pooler.to(self._device, self.dtype).eval()
        self.backbone.model.to(self._device).eval()
        self.max_batch_tokens = 8192 if self._device.type == "cpu" else 65536
        convert = self.tokenizer.convert_tokens_to_ids
        self._pool_token_id = convert(recipe.pool_token) if recipe.pool_token else None
        self._marker_ids = [convert(t) for t in recipe.instruction_markers or []]
        self._image_token_id = convert(self.backbone.image_token)
        # Special tokens the tokenizer appends (MM-Embed's </s>): truncation keeps them, as HF tokenizers do.
        plain, full = (self.tokenizer("a", add_special_tokens=flag)["input_ids"] for flag in (False, True))
        self._special_tail = len(full) - full.index(plain[-1]) - 1 if plain and plain[-1] in full else 0

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

    def mllm_model(self) -> torch.nn.Module:
        return self.backbone.model

    def cost(self, item: Item) -> int:
        visuals = 0 if item.image is None else 1
        if item.video is not None:
            visuals += self.recipe.max_frames
        return 48 + len(item.text or "") // 3 + visuals * self.backbone.estimate_image_tokens()

    def text_problem(self, item: Item) -> str | None:
        return special_text_problem(self.tokenizer, item)

    def prepare(self, items: Sequence[Item]) -> dict[str, Any]:
        return self.to_device(self.prepare_host(items))

    def prepare_host(self, items: Sequence[Item]) -> dict[str, Any]:
        check_special_text(self.tokenizer, items)  # before the images are decoded: it names the item
        per_item = [self._visuals(it) for it in items]
        batch, counts = self.backbone.pixel_batch([img for imgs in per_item for img in imgs])
        next_image = iter(counts)
        rendered = [render(self.recipe, item, [
            expand_placeholder(self.recipe.image_placeholder, self.backbone.image_token, next(next_image))
            for _ in imgs]) for item, imgs in zip(items, per_item)]
        enc = self.tokenizer([r.text for r in rendered], return_offsets_mapping=True)
        rows = [self._truncate(item, len(imgs), ids, offsets) for item, imgs, ids, offsets in
                zip(items, per_item, enc["input_ids"], enc["offset_mapping"])]
        lengths = torch.tensor([len(ids) for ids, _ in rows])
        width = int(lengths.max())
        pad = [self.tokenizer.pad_token_id] * width
        input_ids = torch.tensor([ids + pad[len(ids):] for ids, _ in rows], dtype=torch.long)
        attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        # MM-Embed's instruction prefixes, all tokenised in one call (None where an item has none)
        prefixes = [r.pool_prefix for r in rendered]
        given = [p for p in prefixes if p is not None]
        counts = iter(len(ids) for ids in self.tokenizer(given)["input_ids"]) if given else iter(())
        prefix_lengths = [None if p is None else next(counts) for p in prefixes]
        pool_mask = torch.tensor([self._pool_row(ids, offsets, r, n) + [0] * (width - len(ids))
                                  for (ids, offsets), r, n in zip(rows, rendered, prefix_lengths)], dtype=torch.long)
        batch.update(input_ids=input_ids, attention_mask=attention_mask, pool_mask=pool_mask)
        return batch

    def _truncate(self, item: Item, n_images: int, ids: list[int], offsets: list[tuple[int, int]]
                  ) -> tuple[list[int], list[tuple[int, int]]]:
        """Cut a prompt over max_length the way the reference processor does (its tail, keeping the special
        tokens the tokenizer appends), or name the item when the recipe (or an image in the way) forbids it."""
        r = self.recipe
        image_tokens = sum(1 for t in ids if t == self._image_token_id)
        length = len(ids) - image_tokens + n_images if r.max_length_counts_image_once else len(ids)
        if length <= r.max_length:
            return ids, offsets
        if not (r.truncation == "all" or (r.truncation == "corpus" and not item.is_query)):
            raise ItemError(item, f"prompt is {length} tokens, over the recipe's max_length {r.max_length}",
                            "shorten the text or lower the image-token budget")
        cut = length - r.max_length
        tail = self._special_tail
        keep = len(ids) - tail - cut
        ids = ids[:keep] + ids[len(ids) - tail:]
        offsets = offsets[:keep] + offsets[len(offsets) - tail:]
        if sum(1 for t in ids if t == self._image_token_id) != image_tokens:
            raise ItemError(item, f"prompt is {length} tokens, over max_length {r.max_length}, and cutting it "
                            "would cut an image", "shorten the text or lower the image-token budget")
        return ids, offsets

    def _pool_row(self, ids: list[int], offsets: list[tuple[int, int]], rendered: Rendered,
                  prefix_tokens: int | None) -> list[int]:
        """1 for the tokens pooling may use: every token but, when the recipe excludes it, the instruction
        (`prefix_tokens`: how many tokens rendered.pool_prefix tokenises to)."""
        keep = [1] * len(ids)
        r = self.recipe
        if not r.exclude_instruction:
            return keep
        if r.instruction_markers:  # U-MARVEL: from the start marker through the end marker
            start_id, end_id = self._marker_ids
            if start_id in ids:
                start = ids.index(start_id)
                end = ids.index(end_id, start) if end_id in ids[start:] else len(ids) - 1
                keep[start:end + 1] = [0] * (end + 1 - start)
        elif prefix_tokens is not None:  # MM-Embed: as many tokens as the instruction tokenises to
            keep[:prefix_tokens] = [0] * min(prefix_tokens, len(ids))
        else:
            for i, drop in enumerate(span_token_mask([tuple(o) for o in offsets], rendered.instruction_span)):
                if drop:
                    keep[i] = 0
        return keep

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
            return P.before_token(hidden, batch["input_ids"], self._pool_token_id, batch["attention_mask"])
        if how == "latent_attention":
            return self.pooler(hidden, batch["pool_mask"])
        raise UmrError(f"pooling {how!r} is not for MLLM backbones")

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
            # Published embedding tables are padded (Qwen2-VL-7B: 152,064 rows for 151,657 tokens): the new ids
            # fit, and shrinking would drop trained rows.
            if len(self.tokenizer) > self.backbone.model.get_input_embeddings().weight.shape[0]:
                self.backbone.model.resize_token_embeddings(len(self.tokenizer))

    def trainable_modules(self) -> dict[str, torch.nn.Module]:
        """The HF model, and the latent-attention pooling head when the recipe has one (MM-Embed)."""
        mods = {"model": self.backbone.model}
        if self.pooler is not None:
            mods["pooler"] = self.pooler
        return mods

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
                "dtype": str(self.dtype).replace("torch.", ""), "weights": weights_fingerprint(self.model_path)}
