"""Loading an MLLM backbone for a recipe's family: Qwen2-VL / Qwen2.5-VL (`umr.models.backbones`) or LLaVA-NeXT
(`umr.models.llava_backbone`). The chooser sits above both, so neither imports it back."""

from __future__ import annotations

import torch

from umr.errors import UmrError
from umr.models.backbones import Backbone, QwenVLBackbone, check_loading
from umr.models.llava_backbone import load_llava_next
from umr.models.recipe import Recipe


def load_backbone(path: str, recipe: Recipe, dtype: torch.dtype, with_lm_head: bool = False) -> Backbone:
    """Load the HF model and its slow image processor for a recipe's family. Embedders need no LM head
    (`with_lm_head` is for the re-ranker, which reads Yes/No logits)."""
    from transformers import AutoConfig, AutoImageProcessor

    config = AutoConfig.from_pretrained(path)
    processor = AutoImageProcessor.from_pretrained(path, use_fast=False)
    if recipe.family == "qwen2-vl":
        if config.model_type == "qwen2_5_vl":
            from transformers import Qwen2_5_VLForConditionalGeneration as Model
        elif config.model_type == "qwen2_vl":
            from transformers import Qwen2VLForConditionalGeneration as Model
        else:
            raise UmrError(f"{path}: recipe {recipe.name!r} needs a Qwen2-VL/Qwen2.5-VL model, "
                           f"this is {config.model_type!r}")
        # Both layouts load: transformers maps the pre-4.52 one (model.*, visual.*) that the hub checkpoints use.
        model, info = Model.from_pretrained(path, dtype=dtype, attn_implementation="sdpa", output_loading_info=True)
        return QwenVLBackbone(model, processor, recipe, check_loading(path, info))
    if recipe.family == "llava-next":
        if config.model_type != "llava_next":
            raise UmrError(f"{path}: recipe {recipe.name!r} needs a LLaVA-NeXT model, this is {config.model_type!r}")
        return load_llava_next(path, processor, recipe, dtype, with_lm_head)
    raise UmrError(f"recipe family {recipe.family!r} is not an MLLM backbone")
