"""LoRA on the LLM of an MLLM embedder (vision tower and projector frozen), and merging it back.

peft injects LoRA layers into the model *in place*, so the embedder keeps its own `backbone.model` object and
its forward path is unchanged; the returned `PeftModel` is only a handle to save or merge the adapter.
Target modules are matched with a regex limited to `language_model`, because LLaVA-NeXT's CLIP tower also has
`q_proj`/`k_proj`/`v_proj` layers that a plain name list would catch.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from umr.errors import UmrError

#: attention and MLP projections of Qwen2 / Mistral / Llama decoder layers
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
#: the vision parts of each MLLM family, frozen unless training asks otherwise
VISION_PARTS = ("visual", "vision_tower", "multi_modal_projector", "image_newline")
TRAIN_MARKER = "umr_train.json"


@dataclass
class LoraSpec:
    r: int = 16  # rank: U-MARVEL uses 16-64 on 7B; tiny models need less
    alpha: int = 32  # scale = alpha / r; 2·r is the common choice
    dropout: float = 0.05  # regularises small stages
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))  # LLM layers only

    def target_regex(self) -> str:
        names = "|".join(self.target_modules)
        return rf"(.*\.)?language_model\..*\.({names})"


def vision_modules(model: nn.Module) -> list[tuple[str, nn.Module | nn.Parameter]]:
    """The vision tower / projector submodules (and LLaVA-NeXT's image_newline parameter) of an HF MLLM."""
    inner = getattr(model, "model", model)
    return [(name, getattr(inner, name)) for name in VISION_PARTS if getattr(inner, name, None) is not None]


def set_vision_trainable(model: nn.Module, trainable: bool) -> None:
    for _, part in vision_modules(model):
        params = [part] if isinstance(part, nn.Parameter) else list(part.parameters())
        for p in params:
            p.requires_grad_(trainable)


def freeze_matching(modules: dict[str, nn.Module], patterns: list[str]) -> int:
    """Freeze every parameter whose name (as `module.named_parameters()` gives it) matches one of the regexes;
    returns how many were frozen. A pattern that matches nothing is an error naming it and a few real names."""
    named = [(n, p) for mod in modules.values() for n, p in mod.named_parameters()]
    frozen = 0
    for pattern in patterns:
        rx = re.compile(pattern)
        hits = [p for n, p in named if rx.search(n)]
        if not hits:
            raise UmrError(f"frozen pattern {pattern!r} matches no parameter; names look like "
                           f"{[n for n, _ in named[:3]]}")
        for p in hits:
            frozen += int(p.requires_grad)
            p.requires_grad_(False)
    return frozen


def apply_lora(model: nn.Module, spec: LoraSpec) -> Any:
    """Inject LoRA into the LLM of `model` (in place), freeze everything else; returns the PeftModel handle."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                        target_modules=spec.target_regex(), bias="none")
    peft_model = get_peft_model(model, config)  # freezes every non-LoRA parameter
    if not any(p.requires_grad for p in model.parameters()):
        raise UmrError(f"LoRA matched no module for targets {spec.target_modules}")
    return peft_model


def save_adapter(peft_model: Any, out_dir: str | Path, base: str, recipe: str | None, pooler: Any = None) -> Path:
    """The adapter (peft format), the trained pooling head if any, and umr_train.json naming the base."""
    out = Path(out_dir)
    peft_model.save_pretrained(out)
    if pooler is not None:
        pooler.save(out)
    (out / TRAIN_MARKER).write_text(json.dumps({"base_model": str(base), "recipe": recipe}, indent=2) + "\n")
    return out


def merge_into_embedder(embedder: Any, peft_model: Any) -> None:
    """Fold the LoRA weights into the base weights; the embedder then runs the plain merged model."""
    embedder.backbone.model = peft_model.merge_and_unload()


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None,
                  device: str | None = "cpu") -> Path:
    """Base model + adapter → a merged HF folder that `umr.load_embedder(out_dir)` reads."""
    from peft import PeftModel

    from umr.models.registry import load_embedder

    adapter = Path(adapter_dir)
    if not (adapter / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter}: no adapter_config.json (is this a LoRA adapter folder?)")
    marker = json.loads((adapter / TRAIN_MARKER).read_text()) if (adapter / TRAIN_MARKER).is_file() else {}
    base = base or marker.get("base_model")
    if not base:
        raise UmrError(f"{adapter}: no base model recorded; pass the base model folder")
    embedder = load_embedder(base, recipe=marker.get("recipe"), device=device, dtype="fp32")
    peft_model = PeftModel.from_pretrained(embedder.model, str(adapter))
    merge_into_embedder(embedder, peft_model)
    out = embedder.save_pretrained(out_dir)
    from umr.models.pooling import LatentAttentionPooling

    head = adapter / LatentAttentionPooling.FILE  # the head trained with the adapter
    if head.is_file():
        shutil.copy2(head, out / head.name)
    return out
