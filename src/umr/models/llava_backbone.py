"""LLaVA-NeXT backbone (MM-Embed): the global image tile only, optionally followed by `image_newline`.

Two checkpoint layouts load:
  - MM-Embed's (nvidia/MM-Embed): the LLM is NV-Embed's bidirectional Mistral stored as `language_model.*`
    (no `.model.`, no LM head), beside `vision_tower.*`, `multi_modal_projector.*`, `image_newline` and the
    pooling head `latent_attention_model.*`. transformers' LlavaNextModel has exactly these names.
  - the llava-hf one (`language_model.model.*` + `language_model.lm_head`, or transformers ≥ 4.52's
    `model.language_model.*`), which transformers maps itself.
Embedders use LlavaNextModel (no LM head); the re-ranker asks for the LM head.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from umr.errors import UmrError
from umr.models.backbones import Backbone, check_loading, padding_only_mask
from umr.models.recipe import Recipe


class LlavaNextBackbone(Backbone):
    """The vision tower and projector run on tile 0 (the whole image resized), their features (plus the
    image_newline vector when the recipe says so) replace the expanded <image> tokens, the LLM runs on the
    merged embeddings."""

    image_token = "<image>"

    @property
    def inner(self) -> Any:
        """The LlavaNextModel (the embedder's model itself, or the re-ranker's `.model`)."""
        return getattr(self.model, "model", self.model)

    @property
    def tokens_per_image(self) -> int:
        vision = self.model.config.vision_config
        n = (vision.image_size // vision.patch_size) ** 2
        n += 1 if self.model.config.vision_feature_select_strategy == "full" else 0
        return n + (1 if self.recipe.image_newline else 0)

    def process_images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[int]]:
        out = self.image_processor(images=images, return_tensors="pt")
        global_tile = out["pixel_values"][:, 0]  # tile 0 is the whole image resized; the rest are crops
        return {"pixel_values": global_tile}, [self.tokens_per_image] * len(images)

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inner, cfg = self.inner, self.model.config
        ids, mask = batch["input_ids"], batch["attention_mask"]
        embeds = inner.get_input_embeddings()(ids)
        if "pixel_values" in batch:
            vision = inner.vision_tower(batch["pixel_values"].to(inner.vision_tower.dtype), output_hidden_states=True)
            feats = vision.hidden_states[cfg.vision_feature_layer]
            if cfg.vision_feature_select_strategy == "default":
                feats = feats[:, 1:]  # drop CLS
            feats = inner.multi_modal_projector(feats)
            if self.recipe.image_newline:  # pack_image_features on a single tile: the features, then the newline
                newline = inner.image_newline.to(feats.dtype)[None, None].expand(feats.shape[0], 1, -1)
                feats = torch.cat([feats, newline], dim=1)
            feats = feats.reshape(-1, embeds.shape[-1])
            slots = (ids == cfg.image_token_index).unsqueeze(-1).expand_as(embeds)
            if int(slots.sum()) != feats.numel():
                raise UmrError(f"image tokens ({int(slots.sum()) // embeds.shape[-1]}) do not match image "
                               f"features ({feats.shape[0]}); is the recipe's image placeholder right?")
            embeds = embeds.masked_scatter(slots, feats.to(embeds.dtype))
        attn = padding_only_mask(mask) if self.recipe.attention == "bidirectional" else mask
        out = inner.language_model(inputs_embeds=embeds, attention_mask=attn, use_cache=False)
        return out.last_hidden_state

    def estimate_image_tokens(self) -> int:
        return self.tokens_per_image


def load_llava_next(path: str, processor: Any, recipe: Recipe, dtype: torch.dtype,
                    with_lm_head: bool) -> LlavaNextBackbone:
    from transformers import LlavaNextForConditionalGeneration, LlavaNextModel

    head = "latent_attention_model."  # the pooling head: read by the embedder, not by transformers
    if with_lm_head:
        model, info = LlavaNextForConditionalGeneration.from_pretrained(
            path, dtype=dtype, attn_implementation="sdpa", output_loading_info=True)
        loading = check_loading(path, info, (head,))
    else:
        model, info = LlavaNextModel.from_pretrained(path, dtype=dtype, attn_implementation="sdpa",
                                                     output_loading_info=True)
        loading = check_loading(path, info, (head, "lm_head.", "language_model.lm_head."))
    return LlavaNextBackbone(model, processor, recipe, loading)
