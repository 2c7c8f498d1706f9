"""MLLM backbones behind one small interface: process images, count their tokens, run the LLM.

Qwen2-VL's and LLaVA-NeXT's full processors need torchvision (a video processor) in this environment, so
inputs are assembled from the tokenizer and the slow (PIL) image processor, and the image placeholder tokens
are expanded here from the processor's output, as the full processor would.

Attention: "causal" passes the usual 2D padding mask (transformers builds the causal mask). "bidirectional"
passes a 4D boolean padding-only mask, which transformers uses as-is, so every token sees every real token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from umr.models.recipe import Recipe


def padding_only_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[b, L] 0/1 → [b, 1, L, L] bool: query i may attend key j iff j is a real token."""
    b, length = attention_mask.shape
    return attention_mask.bool()[:, None, None, :].expand(b, 1, length, length)


def save_hf_folder(out_dir: str | Path, backbone: Backbone, tokenizer: Any) -> Path:
    """Model, tokenizer and image processor as an ordinary HF folder (what from_pretrained reads back)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    backbone.image_processor.save_pretrained(out)
    return out


class Backbone:
    image_token: str
    model: Any

    def __init__(self, model: Any, image_processor: Any, recipe: Recipe) -> None:
        self.model, self.image_processor, self.recipe = model, image_processor, recipe

    def process_images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[int]]:
        """Pixel tensors for a flat list of images, and each image's number of LLM tokens."""
        raise NotImplementedError

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last-layer hidden states [b, L, h]."""
        raise NotImplementedError

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.get_text_config().hidden_size)

    def estimate_image_tokens(self) -> int:
        return 64


class QwenVLBackbone(Backbone):
    """Qwen2-VL and Qwen2.5-VL: dynamic resolution; tokens = t·h·w / merge² from image_grid_thw."""

    image_token = "<|image_pad|>"

    def process_images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[int]]:
        kwargs: dict[str, Any] = {}
        unit = (self.image_processor.patch_size * self.image_processor.merge_size) ** 2  # pixels per token
        if self.recipe.min_image_tokens or self.recipe.max_image_tokens:
            kwargs["size"] = {
                "shortest_edge": (self.recipe.min_image_tokens or 4) * unit,
                "longest_edge": (self.recipe.max_image_tokens or 16384) * unit,
            }
        out = self.image_processor(images=images, return_tensors="pt", **kwargs)
        grid = out["image_grid_thw"]
        counts = (grid.prod(-1) // self.image_processor.merge_size**2).tolist()
        return {"pixel_values": out["pixel_values"], "image_grid_thw": grid}, counts

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inner = self.model.model
        ids, mask = batch["input_ids"], batch["attention_mask"]
        extra: dict[str, Any] = {}
        if "pixel_values" in batch:
            extra = {"pixel_values": batch["pixel_values"].to(self.model.dtype),
                     "image_grid_thw": batch["image_grid_thw"]}
        if self.recipe.attention == "bidirectional":
            # Position ids (3-D M-RoPE) come from the 2D mask; the 4D mask then replaces the causal one.
            position_ids, _ = inner.get_rope_index(input_ids=ids, image_grid_thw=extra.get("image_grid_thw"),
                                                   attention_mask=mask)
            out = inner(input_ids=ids, attention_mask=padding_only_mask(mask), position_ids=position_ids,
                        use_cache=False, **extra)
        else:
            out = inner(input_ids=ids, attention_mask=mask, use_cache=False, **extra)
        return out.last_hidden_state

    def estimate_image_tokens(self) -> int:
        return self.recipe.max_image_tokens or 256


class LlavaNextBackbone(Backbone):
    """LLaVA-NeXT with the global image tile only (MM-Embed): the vision tower and projector run on tile 0,
    their features replace the expanded <image> tokens, and the LLM runs on the merged embeddings."""

    image_token = "<image>"

    @property
    def tokens_per_image(self) -> int:
        vision = self.model.config.vision_config
        n = (vision.image_size // vision.patch_size) ** 2
        return n + (1 if self.model.config.vision_feature_select_strategy == "full" else 0)

    def process_images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[int]]:
        out = self.image_processor(images=images, return_tensors="pt")
        global_tile = out["pixel_values"][:, 0]  # tile 0 is the whole image resized; the rest are crops
        return {"pixel_values": global_tile}, [self.tokens_per_image] * len(images)

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inner = self.model.model
        cfg = self.model.config
        ids, mask = batch["input_ids"], batch["attention_mask"]
        embeds = inner.get_input_embeddings()(ids)
        if "pixel_values" in batch:
            vision = inner.vision_tower(batch["pixel_values"].to(self.model.dtype), output_hidden_states=True)
            feats = vision.hidden_states[cfg.vision_feature_layer]
            if cfg.vision_feature_select_strategy == "default":
                feats = feats[:, 1:]  # drop CLS
            feats = inner.multi_modal_projector(feats).reshape(-1, embeds.shape[-1])
            slots = (ids == cfg.image_token_index).unsqueeze(-1).expand_as(embeds)
            if int(slots.sum()) != feats.numel():
                raise ValueError(f"image tokens ({int(slots.sum()) // embeds.shape[-1]}) do not match image "
                                 f"features ({feats.shape[0]}); is the recipe's image placeholder right?")
            embeds = embeds.masked_scatter(slots, feats.to(embeds.dtype))
        attn = padding_only_mask(mask) if self.recipe.attention == "bidirectional" else mask
        out = inner.language_model(inputs_embeds=embeds, attention_mask=attn, use_cache=False)
        return out.last_hidden_state

    def estimate_image_tokens(self) -> int:
        return self.tokens_per_image


def load_backbone(path: str, recipe: Recipe, dtype: torch.dtype) -> Backbone:
    """Load the HF model and its slow image processor for a recipe's family."""
    from transformers import AutoConfig, AutoImageProcessor

    config = AutoConfig.from_pretrained(path)
    processor = AutoImageProcessor.from_pretrained(path, use_fast=False)
    if recipe.family == "qwen2-vl":
        if config.model_type == "qwen2_5_vl":
            from transformers import Qwen2_5_VLForConditionalGeneration as Model
        elif config.model_type == "qwen2_vl":
            from transformers import Qwen2VLForConditionalGeneration as Model
        else:
            raise ValueError(f"{path}: recipe {recipe.name!r} needs a Qwen2-VL/Qwen2.5-VL model, "
                             f"this is {config.model_type!r}")
        model = Model.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
        return QwenVLBackbone(model, processor, recipe)
    if recipe.family == "llava-next":
        from transformers import LlavaNextForConditionalGeneration

        if config.model_type != "llava_next":
            raise ValueError(f"{path}: recipe {recipe.name!r} needs a LLaVA-NeXT model, this is {config.model_type!r}")
        model = LlavaNextForConditionalGeneration.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
        return LlavaNextBackbone(model, processor, recipe)
    raise ValueError(f"recipe family {recipe.family!r} is not an MLLM backbone")
