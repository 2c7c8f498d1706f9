"""`frozen`: parameters matching a regex stay fixed while the rest train (partial fine-tuning)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from umr.items import Item
from umr.train.config import TrainConfig
from umr.train.data import Pair
from umr.train.lora import freeze_matching
from umr.train.trainer import Trainer


def test_freeze_matching_counts_and_names_a_pattern_that_matches_nothing() -> None:
    mods = {"model": nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))}
    assert freeze_matching(mods, [r"^0\."]) == 2  # weight + bias of the first layer
    assert [p.requires_grad for p in mods["model"].parameters()] == [False, False, True, True]
    with pytest.raises(ValueError, match=r"'encoder' matches no parameter; names look like \['0.weight'"):
        freeze_matching(mods, ["encoder"])


def test_frozen_parameters_do_not_move_and_the_rest_do(tmp_path) -> None:
    pairs = [Pair(Item(text=f"a {c} thing number {i}"), Item(text=f"{c} {i}")) for i, c in
             enumerate(["red", "green", "blue", "pink", "grey", "black", "white", "cyan"])]
    cfg = TrainConfig.of(model="tiny:clip-sf", output_dir=str(tmp_path), batch_size=4, max_steps=3, lr=1e-2,
                      device="cpu", frozen=["^text_model\\.embeddings\\.", "^text_model\\.encoder\\.layers\\.0\\."])
    trainer = Trainer(cfg, pairs=pairs)
    model = trainer.modules["model"]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.fit()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    frozen = {n for n in before if n.startswith(("text_model.embeddings.", "text_model.encoder.layers.0."))}
    assert frozen and not (moved & frozen)
    assert any(n.startswith("text_model.encoder.layers.1.") for n in moved)
