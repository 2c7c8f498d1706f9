"""`QuerySide`: an embedder whose `encode_corpus` embeds queries, so query sets go through the embedding store.

The baselines that used to live here (random, oracle) are `umr.models.baselines`; every model name, theirs
included, resolves through `umr.models.registry.load_embedder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from umr.items import Item
from umr.models.base import Embedder


class QuerySide(Embedder):
    """Wraps an embedder so that `encode_corpus` embeds *queries* (keeping their instructions).

    Lets query sets go through the resumable embedding store, which calls `encode_corpus`.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = f"{inner.name}[queries]"
        self.max_batch_tokens = inner.max_batch_tokens

    @property
    def dim(self) -> int:
        return self.inner.dim

    def prepare(self, items: Sequence[Item]) -> Any:
        return self.inner.prepare(items)

    def forward(self, batch: Any) -> torch.Tensor:
        return self.inner.forward(batch)

    def cost(self, item: Item) -> int:
        return self.inner.cost(item)

    def encode_corpus(self, items: Any, **kw: Any) -> np.ndarray:
        return self.inner.encode_queries(items, **kw)

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "side": "query"}
