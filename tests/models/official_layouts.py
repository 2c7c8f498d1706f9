"""Tiny random checkpoints in the published models' own on-disk layouts, for the reference parity tests.

Weights are redrawn with std 0.2: at transformers' default 0.02 attention is nearly uniform, which hides wrong
positions, prompts and masks. Keys are written here, by hand, in each checkpoint's layout:
  gme       pre-4.52 Qwen2-VL keys (`model.*`, `visual.*`), tied embeddings, no LM head (the 2B)
  lamra     the same + `lm_head.weight` + an added `<emb>` token
  u-marvel  the same + `<instruction_start>`/`<instruction_end>` tokens + the trained temperature `sim.temp`
  lamra-rank  a Qwen2-VL-Instruct fine-tune (LamRA-Rank): `lm_head.weight`, no added token, and the
            instruct model's generation_config (greedy ignores its sampling fields; its repetition penalty acts)
  mm-embed  NV-Embed's LLM as `language_model.*`, `vision_tower.*`, `multi_modal_projector.*`, `image_newline`,
            the latent-attention head `latent_attention_model.*`; MM-Embed's config fields
The tokenizer / config skeleton comes from umr's offline tiny builders (a fixture, not the computation under
test); everything the references compute is in official_refs.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

STD = 0.2
QWEN_DEFAULT_PIXELS = {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 16384}  # Qwen2-VL's shipped processor
# Qwen's instruct models ship a repetition penalty of 1.05 with sampling defaults (top_k 1 makes them near-greedy)
INSTRUCT_GENERATION = {"do_sample": True, "repetition_penalty": 1.05, "temperature": 0.1, "top_k": 1, "top_p": 0.001}


def _redraw(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if value.dim() >= 2 or key.endswith(("latents", "image_newline")):
            value = torch.randn(value.shape, generator=gen) * STD
        out[key] = value.contiguous().clone()
    return out


def _write(folder: Path, tensors: dict[str, torch.Tensor], config_update: dict) -> None:
    for old in folder.glob("model*.safetensors*"):
        old.unlink()
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config.update(config_update)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "umr_recipe.json").unlink(missing_ok=True)  # a published folder says nothing about umr


def qwen_checkpoint(kind: str, folder: Path, seed: int = 0) -> Path:
    from transformers import Qwen2VLForConditionalGeneration

    from umr.models.tiny import build_tiny_qwen2_vl

    extra = {"gme": None, "lamra": ["<emb>"], "u-marvel": ["<emb>", "<instruction_start>", "<instruction_end>"],
             "lamra-rank": None}[kind]
    build_tiny_qwen2_vl(folder, extra_tokens=extra, seed=seed)
    state = Qwen2VLForConditionalGeneration.from_pretrained(folder).state_dict()
    tensors = {}
    for key, value in _redraw(state, seed).items():
        key = re.sub(r"^model\.visual\.", "visual.", key)
        key = re.sub(r"^model\.language_model\.", "model.", key)
        tensors[key] = value
    tied = kind == "gme"
    if tied:
        tensors.pop("lm_head.weight")
    if kind == "u-marvel":
        tensors["sim.temp"] = torch.tensor(0.05)
    _write(folder, tensors, {"tie_word_embeddings": tied, "architectures": ["Qwen2VLForConditionalGeneration"]})
    proc = json.loads((folder / "preprocessor_config.json").read_text())
    proc.update(QWEN_DEFAULT_PIXELS)
    proc.pop("size", None)
    (folder / "preprocessor_config.json").write_text(json.dumps(proc, indent=2))
    if kind == "lamra-rank":
        path = folder / "generation_config.json"
        gen = json.loads(path.read_text()) if path.is_file() else {}
        gen.update(INSTRUCT_GENERATION)
        path.write_text(json.dumps(gen, indent=2))
    return folder


def mm_embed_checkpoint(folder: Path, seed: int = 0, heads: int = 8, head_dim: int = 24) -> Path:
    from transformers import LlavaNextModel

    from umr.models.tiny import build_tiny_llava_next

    build_tiny_llava_next(folder, seed=seed)
    model = LlavaNextModel.from_pretrained(folder)
    tensors = _redraw(model.state_dict(), seed)
    dim, inner = model.config.text_config.hidden_size, heads * head_dim
    blocks = {"0.norm.weight": (dim,), "0.norm.bias": (dim,), "0.norm_context.weight": (dim,),
              "0.norm_context.bias": (dim,), "0.fn.to_q.weight": (inner, dim), "0.fn.to_kv.weight": (2 * inner, dim),
              "0.fn.to_out.weight": (dim, inner), "1.norm.weight": (dim,), "1.norm.bias": (dim,),
              "1.fn.net.0.weight": (8 * dim, dim), "1.fn.net.0.bias": (8 * dim,), "1.fn.net.2.weight": (dim, 4 * dim),
              "1.fn.net.2.bias": (dim,)}
    head = {"latents": (16, dim), **{f"cross_attend_blocks.{k}": v for k, v in blocks.items()}}
    gen = torch.Generator().manual_seed(seed + 7)
    for key, shape in head.items():
        value = torch.randn(shape, generator=gen) * STD
        if key.endswith("norm.weight") or key.endswith("norm_context.weight"):
            value = 1 + value
        tensors["latent_attention_model." + key] = value
    _write(folder, tensors, {"architectures": ["NVMMEmbedModel"], "retriever": "nvidia/NV-Embed-v1",
                             "padding_side": "right", "add_eos_token": True, "global_image_patch_only": True})
    return folder
