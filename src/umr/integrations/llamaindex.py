"""A LlamaIndex `MultiModalEmbedding` over any umr Embedder: `UmrMultiModalEmbedding(embedder_or_name)`.

    model = UmrMultiModalEmbedding("tiny:gme", query_instruction="Retrieve the best match.")
    index = VectorStoreIndex(nodes, embed_model=model)                       # text
    index = MultiModalVectorStoreIndex(nodes, embed_model=model, image_embed_model=model)   # text and images

Texts and images are embedded as documents (as `umr embed` does); queries (`get_query_embedding`, which the
retrievers call) with the query instruction, as `umr search` does. Images: paths, data: URLs or bytes streams.
"""

from __future__ import annotations

from typing import Any

try:
    from llama_index.core.embeddings import MultiModalEmbedding
except ImportError as exc:  # an optional extra: say which
    raise ImportError("umr.integrations.llamaindex needs llama-index-core: pip install 'umr[llamaindex]'") from exc
from pydantic import Field, PrivateAttr

from umr.integrations.common import ImageRef, as_embedder, embed_documents, embed_queries, image_of
from umr.items import Item
from umr.models.base import Embedder


class UmrMultiModalEmbedding(MultiModalEmbedding):
    """LlamaIndex text and image embeddings from one umr model (one vector space for both)."""

    query_instruction: str | None = Field(
        default=None, description="the task instruction queries get (None: the recipe's plain query form)")
    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder | str, query_instruction: str | None = None, embed_batch_size: int = 16,
                 **kwargs: Any) -> None:
        model = as_embedder(embedder)
        kwargs.setdefault("model_name", embedder if isinstance(embedder, str) else model.name)
        super().__init__(query_instruction=query_instruction, embed_batch_size=embed_batch_size, **kwargs)
        self._embedder = model

    @classmethod
    def class_name(cls) -> str:
        return "UmrMultiModalEmbedding"

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def _queries(self, texts: list[str]) -> list[list[float]]:
        return embed_queries(self._embedder, [Item(text=t) for t in texts], self.query_instruction,
                             self.embed_batch_size)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._queries([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return embed_documents(self._embedder, [Item(text=t) for t in texts], self.embed_batch_size)

    def _get_image_embedding(self, img_file_path: ImageRef) -> list[float]:
        return self._get_image_embeddings([img_file_path])[0]

    def _get_image_embeddings(self, img_file_paths: list[ImageRef]) -> list[list[float]]:
        return embed_documents(self._embedder, [Item(image=image_of(p)) for p in img_file_paths],
                               self.embed_batch_size)

    async def _aget_image_embedding(self, img_file_path: ImageRef) -> list[float]:
        return self._get_image_embedding(img_file_path)
