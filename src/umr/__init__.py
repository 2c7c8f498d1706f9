"""umr — universal multimodal retrieval with MLLM embedders."""

from typing import Any

from umr.errors import UmrError
from umr.items import Item, ItemError, read_items
from umr.models.base import Embedder

__version__ = "0.1.0"


def load_embedder(name_or_dir: str, recipe: str | None = None, **kwargs: Any) -> Embedder:
    """Load any embedder by hub id, local directory or short name; see `umr.models.registry.load_embedder`."""
    from umr.models.registry import load_embedder as _load

    return _load(name_or_dir, recipe=recipe, **kwargs)


__all__ = ["Embedder", "Item", "ItemError", "UmrError", "load_embedder", "read_items", "__version__"]
