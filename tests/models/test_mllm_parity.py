"""Parity: umr's MLLM embeddings equal a plain-transformers computation written here, independently.

The reference builds each recipe's prompt by hand, expands image tokens from the processor's own output,
runs the stock transformers model (bidirectional = the attention modules' `is_causal` flag switched off, no
mask), and pools by hand. Only the MM-Embed latent head (an umr module, not part of transformers) is shared.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mllm_support import MLLM_RECIPES, draw
from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

from umr import Item
from umr.models.pooling import LatentAttentionPooling

SYSTEM = "You are a helpful assistant."
INSTRUCTION = "Retrieve the image that matches"
ITEMS = {
    "text": Item(text="a small red circle on the left", instruction=INSTRUCTION),
    "image": Item(image=draw("blue", "square", (140, 100))),
    "text+image": Item(text="make it green", image=draw("red"), instruction=INSTRUCTION),
}
SUMMARY = {"text": "sentence", "image": "image", "image,text": "image and sentence"}


def _load(path: str, bidirectional: bool):
    model = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa").eval()
    if bidirectional:
        for name, module in model.named_modules():
            if name.endswith("self_attn") and "language_model" in name:
                module.is_causal = False
    return model, AutoTokenizer.from_pretrained(path), AutoImageProcessor.from_pretrained(path, use_fast=False)


def _qwen_prompt(recipe: str, item: Item, n_image_tokens: int) -> str:
    vision = f"<|vision_start|>{'<|image_pad|>' * n_image_tokens}<|vision_end|>" if n_image_tokens else ""
    text = item.text or ""
    if recipe.startswith("gme"):
        system = item.instruction or SYSTEM
        return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{vision}{text}<|im_end|>\n"
                f"<|im_start|>assistant\n<|endoftext|>")
    if item.instruction:
        ins = f"<instruction_start>{item.instruction}<instruction_end> " if recipe == "u-marvel" else (
            f"{item.instruction} ")
    else:
        ins = ""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{vision}{ins}{text}\n"
            f"Summarize above {SUMMARY[item.modality]} in one word:<|im_end|>\n"
            "<|im_start|>assistant\n<emb>.<|im_end|>")


def reference_qwen(recipe: str, path: str, item: Item) -> np.ndarray:
    model, tok, proc = _load(path, bidirectional=recipe == "u-marvel")
    kwargs, n = {}, 0
    if item.image is not None:
        px = proc(images=[item.image], return_tensors="pt")
        kwargs = {"pixel_values": px["pixel_values"], "image_grid_thw": px["image_grid_thw"]}
        n = int(px["image_grid_thw"].prod()) // proc.merge_size**2
    ids = tok(_qwen_prompt(recipe, item, n), return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hidden = model.model(input_ids=ids, **kwargs).last_hidden_state[0]
    ids = ids[0].tolist()
    if recipe.startswith("gme"):
        vec = hidden[-1]
    elif recipe == "lamra":
        vec = hidden[ids.index(tok.convert_tokens_to_ids("<emb>")) - 1]
    else:  # u-marvel: mean over all tokens but the instruction, boundary tokens included
        keep = torch.ones(len(ids), dtype=torch.bool)
        if item.instruction:
            start = ids.index(tok.convert_tokens_to_ids("<instruction_start>"))
            end = ids.index(tok.convert_tokens_to_ids("<instruction_end>"))
            keep[start:end + 1] = False
        vec = hidden[keep].mean(0)
    return F.normalize(vec, dim=-1).numpy()


def reference_mm_embed(path: str, item: Item) -> np.ndarray:
    model, tok, proc = _load(path, bidirectional=True)
    cfg = model.config
    prefix = f"Instruct: {item.instruction}\nQuery: " if item.instruction else ""
    n_img = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    vision = "<image>" * n_img + "\n" if item.image is not None else ""
    ids = tok(f"{prefix}{vision}{item.text or ''}</s>", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        embeds = model.get_input_embeddings()(ids)
        if item.image is not None:
            tile = proc(images=[item.image], return_tensors="pt")["pixel_values"][:, 0]
            states = model.model.vision_tower(tile, output_hidden_states=True).hidden_states[cfg.vision_feature_layer]
            feats = model.model.multi_modal_projector(states[:, 1:])[0]
            embeds[0, ids[0] == cfg.image_token_index] = feats
        hidden = model.model.language_model(inputs_embeds=embeds).last_hidden_state
        keep = torch.ones(1, ids.shape[1])
        if prefix:
            n_prefix = len(tok(prefix.rstrip())["input_ids"])  # includes <s>, which stays in the pool
            keep[0, 1:n_prefix] = 0
        head = LatentAttentionPooling.load(path).eval()
        vec = head(hidden, keep)[0]
    return F.normalize(vec, dim=-1).numpy()


@pytest.mark.parametrize("recipe", MLLM_RECIPES)
@pytest.mark.parametrize("kind", list(ITEMS))
def test_parity_with_plain_transformers(recipe: str, kind: str, tiny_dirs, embedders) -> None:
    item = ITEMS[kind]
    ours = embedders[recipe].encode([item])[0]
    ref = reference_mm_embed(tiny_dirs[recipe], item) if recipe == "mm-embed" else reference_qwen(
        recipe, tiny_dirs[recipe], item)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-4


@pytest.mark.parametrize("recipe", MLLM_RECIPES)
def test_batch_invariance(recipe: str, embedders) -> None:
    emb = embedders[recipe]
    mixed = [*ITEMS.values(), Item(text="a much longer passage " * 6), Item(image=draw("yellow", size=(90, 160)))]
    together = emb.encode(mixed, batch_size=8)
    alone = np.stack([emb.encode([it])[0] for it in mixed])
    assert np.abs(together - alone).max() <= 1e-4
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
