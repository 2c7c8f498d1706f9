"""MLLM backbones behind one small interface: process images, count their tokens, run the LLM.

Qwen2-VL's and LLaVA-NeXT's full processors need torchvision (a video processor) in this environment, so
inputs are assembled from the tokenizer and the slow (PIL) image processor, and the image placeholder tokens
are expanded here from the processor's output, as the full processor would.

Attention: "causal" passes the usual 2D padding mask (transformers builds the causal mask). "bidirectional"
passes a 4D boolean padding-only mask, which transformers uses as-is, so every token sees every real token.
Positions follow the recipe (see Recipe.positions): the published Qwen2-VL embedders ran their LLM with plain
1-D positions, so that is what their checkpoints expect.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from umr.errors import UmrError
from umr.models.qwen_resize import pre_resize
from umr.models.recipe import Recipe

log = logging.getLogger(__name__)

#: parameters a published checkpoint carries that no inference model has (U-MARVEL's learned temperature)
TRAINING_ONLY_KEYS = ("sim.temp",)


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


def check_loading(path: str, info: dict[str, list[str]], expected_unexpected: tuple[str, ...] = ()
                  ) -> dict[str, list[str]]:
    """Missing weights mean a wrong key layout (the model would run on random tensors): refuse. Unexpected ones
    are logged, except the training-only keys a published checkpoint is known to carry. Returns what is left
    of both (Backbone.loading_info)."""
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("lm_head.weight")]
    if missing:
        raise UmrError(f"{path}: {len(missing)} weights missing from the checkpoint (e.g. {missing[:3]}); its "
                       "key layout is not one umr knows")
    extra = [k for k in info.get("unexpected_keys", []) if not k.startswith(expected_unexpected)
             and k not in TRAINING_ONLY_KEYS]
    if extra:
        log.warning("%s: %d checkpoint weights not used (e.g. %s)", path, len(extra), extra[:3])
    return {"missing": missing, "unexpected": extra}


class Backbone:
    image_token: str
    model: Any

    def __init__(self, model: Any, image_processor: Any, recipe: Recipe,
                 loading_info: dict[str, list[str]] | None = None) -> None:
        self.model, self.image_processor, self.recipe = model, image_processor, recipe
        #: checkpoint weights the model lacked / did not use, after the known extras (empty when it fits)
        self.loading_info = loading_info or {"missing": [], "unexpected": []}

    def process_images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[int]]:
        """Pixel tensors for a flat list of images, and each image's number of LLM tokens."""
        raise NotImplementedError

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last-layer hidden states [b, L, h]."""
        raise NotImplementedError

    def pixel_batch(self, images: list[Image.Image]) -> tuple[dict[str, Any], list[int]]:
        """process_images for a batch that may hold no image at all: ({}, []) then."""
        return self.process_images(images) if images else ({}, [])

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
        if self.recipe.image_pre_resize:
            low, high = self.recipe.image_pre_resize
            images = [pre_resize(img, low * unit, high * unit, int(unit**0.5)) for img in images]
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
        embeds = inner.get_input_embeddings()(ids)
        grid = batch.get("image_grid_thw")
        if "pixel_values" in batch:
            feats = inner.visual(batch["pixel_values"].to(inner.visual.dtype), grid_thw=grid)
            slots = (ids == self.model.config.image_token_id).unsqueeze(-1).expand_as(embeds)
            if int(slots.sum()) != feats.numel():
                raise UmrError(f"image tokens ({int(slots.sum()) // embeds.shape[-1]}) do not match image "
                               f"features ({feats.shape[0]})")
            embeds = embeds.masked_scatter(slots, feats.to(embeds.dtype))
        if self.recipe.positions == "mrope":
            positions, _ = inner.get_rope_index(input_ids=ids, image_grid_thw=grid, attention_mask=mask)
        else:  # right padding, so every row's real tokens sit at 0..n-1, as in the reference forward
            positions = torch.arange(ids.shape[1], device=ids.device).expand(ids.shape[0], -1)
        attn = padding_only_mask(mask) if self.recipe.attention == "bidirectional" else mask
        out = inner.language_model(inputs_embeds=embeds, attention_mask=attn, position_ids=positions,
                                   use_cache=False)
        return out.last_hidden_state

    def estimate_image_tokens(self) -> int:
        return self.recipe.max_image_tokens or 256
