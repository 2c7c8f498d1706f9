"""Batch invariance of every tiny MLLM recipe: an item's vector does not depend on what it is batched with
(right padding, 1-D positions, padding-only masks). Parity with the official code: test_reference_parity.py."""

from __future__ import annotations

import numpy as np
import pytest
from mllm_support import MLLM_RECIPES, draw

from umr import Item

ITEMS = {
    "text": Item(text="a small red circle on the left", instruction="Retrieve the image that matches"),
    "image": Item(image=draw("blue", "square", (140, 100))),
    "text+image": Item(text="make it green", image=draw("red"), instruction="Retrieve the image that matches"),
}


@pytest.mark.parametrize("recipe", MLLM_RECIPES)
def test_batch_invariance(recipe: str, embedders) -> None:
    emb = embedders[recipe]
    mixed = [*ITEMS.values(), Item(text="a much longer passage " * 6), Item(image=draw("yellow", size=(90, 160)))]
    together = emb.encode(mixed, batch_size=8)
    alone = np.stack([emb.encode([it])[0] for it in mixed])
    assert np.abs(together - alone).max() <= 1e-4
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
