"""GradCache must give the same parameter (and τ) gradients as one plain full-batch backward."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from umr.items import Item
from umr.train.gradcache import full_batch_loss, gradcache_backward
from umr.train.losses import InfoNCELoss


def batch(shape_image: Callable) -> tuple[list[Item], list[Item], list[list[Item]]]:
    colours = ["red", "green", "blue", "yellow", "purple"]
    queries = [Item(text=f"a {c} circle", instruction="find the picture", id=f"q{i}") for i, c in enumerate(colours)]
    positives = [Item(image=shape_image(c), id=f"p{i}") for i, c in enumerate(colours)]
    negatives = [[Item(image=shape_image(c, "square"), text=f"{c} square", id=f"n{i}")] for i, c in enumerate(colours)]
    return queries, positives, negatives


def grads(embedder, loss_fn) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in embedder.model.named_parameters() if p.grad is not None}
    out["tau"] = loss_fn.log_scale.grad.clone()
    return out


@pytest.mark.parametrize("micro", [2, 3])  # 3 leaves a ragged last micro-batch
def test_gradcache_equals_full_batch(tiny_gme, draw, micro: int) -> None:
    torch.manual_seed(0)
    model = tiny_gme.model
    model.train()
    loss_fn = InfoNCELoss(0.05, learnable=True, symmetric=True)
    q, p, n = batch(draw)

    full = full_batch_loss(tiny_gme, loss_fn, q, p, n)
    full.backward()
    want = grads(tiny_gme, loss_fn)
    model.zero_grad()
    loss_fn.zero_grad()

    cached = gradcache_backward(tiny_gme, loss_fn, q, p, n, micro_batch=micro)
    got = grads(tiny_gme, loss_fn)

    assert cached.item() == pytest.approx(full.item(), rel=1e-4)
    assert want.keys() == got.keys()
    assert len(want) > 50  # LLM, vision tower and τ all received gradients
    scale = max(w.abs().max().item() for w in want.values())
    for name in want:
        assert torch.allclose(got[name], want[name], rtol=1e-3, atol=1e-5 * scale), name
