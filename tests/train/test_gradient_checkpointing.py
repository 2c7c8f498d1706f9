"""Gradient checkpointing changes memory, not the maths: same loss and same gradients as without it."""

from __future__ import annotations

from PIL import Image

from umr import Item
from umr.models.tiny import build_tiny
from umr.train.config import TrainConfig
from umr.train.data import Pair
from umr.train.gradcache import full_batch_loss
from umr.train.trainer import Trainer


def test_gradient_checkpointing_gives_same_gradients(tmp_path) -> None:
    model = str(build_tiny("gme", tmp_path / "gme"))
    colours = ["red", "green", "blue", "yellow"]
    pairs = [Pair(Item(text=f"a {c} square"), Item(image=Image.new("RGB", (112, 112), c))) for c in colours]
    grads = []
    for flag in (False, True):
        cfg = TrainConfig.of(model=model, output_dir=str(tmp_path / f"run-{flag}"), batch_size=4, symmetric=True,
                          gradient_checkpointing=flag, train_vision=True)
        trainer = Trainer(cfg, pairs=pairs)
        for mod in trainer.modules.values():
            mod.train()
        assert trainer.embedder.model.is_gradient_checkpointing == flag
        loss = full_batch_loss(trainer.embedder, trainer.loss_fn, [p.query for p in pairs],
                               [p.positive for p in pairs])
        loss.backward()
        grads.append((loss.item(), {k: p.grad.clone() for k, p in trainer.named_trainable().items()
                                    if p.grad is not None}))
    (loss_a, ga), (loss_b, gb) = grads
    assert abs(loss_a - loss_b) < 1e-6
    assert ga.keys() == gb.keys() and len(ga) > 10
    assert max((ga[k] - gb[k]).abs().max().item() for k in ga) < 1e-5
    assert max(g.abs().max().item() for g in ga.values()) > 1e-4  # real gradients, not all zeros
