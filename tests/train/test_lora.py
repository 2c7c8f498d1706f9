"""LoRA on the LLM only; a merged folder loads with load_embedder and embeds like the un-merged PEFT model."""

from __future__ import annotations

import numpy as np
import torch

from umr import load_embedder
from umr.cli import main
from umr.items import Item
from umr.train.lora import LoraSpec, apply_lora, save_adapter, set_vision_trainable


def items(draw) -> list[Item]:
    return [Item(text="a red circle", instruction="find the image"), Item(image=draw("blue")),
            Item(image=draw("green", "square"), text="green square")]


def test_lora_targets_llm_only(tiny_gme) -> None:
    model = tiny_gme.model
    apply_lora(model, LoraSpec(r=4, alpha=8))
    set_vision_trainable(model, False)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert all(".language_model." in n for n in trainable)
    assert not any(p.requires_grad for p in model.model.visual.parameters())
    assert any("lora_" in n for n, _ in model.model.visual.named_parameters()) is False
    # every decoder layer's 7 projections got an A and a B matrix
    layers = model.config.get_text_config().num_hidden_layers
    assert len(trainable) == layers * 7 * 2


def test_merge_lora_cli_matches_peft_embeddings(tiny_gme, tiny_gme_dir, draw, tmp_path) -> None:
    torch.manual_seed(0)
    peft_model = apply_lora(tiny_gme.model, LoraSpec(r=4, alpha=8, dropout=0.0))
    with torch.no_grad():  # B starts at zero (LoRA = identity); make the adapter do something
        for name, p in tiny_gme.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    tiny_gme.model.eval()
    with_adapter = tiny_gme.encode(items(draw))
    base = load_embedder(tiny_gme_dir, device="cpu").encode(items(draw))
    assert np.abs(with_adapter - base).max() > 1e-2  # the adapter really changes the embeddings

    adapter = save_adapter(peft_model, tmp_path / "adapter", tiny_gme_dir, "gme")
    assert main(["merge-lora", str(adapter), "--out", str(tmp_path / "merged")]) == 0
    merged = load_embedder(tmp_path / "merged", device="cpu")
    assert merged.recipe.name == "gme" and merged.recipe.max_image_tokens == 16  # tiny overrides survive
    assert not any("lora" in n for n, _ in merged.model.named_parameters())
    np.testing.assert_allclose(merged.encode(items(draw)), with_adapter, atol=1e-4)
