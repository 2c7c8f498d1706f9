"""A LangChain `Embeddings` over any umr Embedder: `UmrEmbeddings(embedder_or_name, query_instruction=...)`.

    store = InMemoryVectorStore(UmrEmbeddings("tiny:gme"))
    store.add_texts(["a red double decker bus", "a sleeping cat"])
    store.similarity_search("a cat", k=1)

Images: `embed_image(uris)` embeds image documents (the method LangChain's multimodal vector stores call), and
`documents="image"` makes `embed_documents` read its strings as images (paths or data: URLs), so a text-only
store such as `InMemoryVectorStore` can hold images and be searched with text or, through
`embed_image_query` and `similarity_search_by_vector`, with an image.
"""

from __future__ import annotations

from typing import Literal

try:
    from langchain_core.embeddings import Embeddings
except ImportError as exc:  # an optional extra: say which
    raise ImportError("umr.integrations.langchain needs langchain-core: pip install 'umr[langchain]'") from exc

from umr.integrations.common import ImageRef, as_embedder, embed_documents, embed_queries, image_of
from umr.items import Item
from umr.models.base import Embedder


class UmrEmbeddings(Embeddings):
    """LangChain embeddings from a umr model: documents plainly (as `umr embed`), queries with an instruction."""

    def __init__(self, embedder: Embedder | str, query_instruction: str | None = None,
                 documents: Literal["text", "image"] = "text", batch_size: int = 16) -> None:
        """embedder: a umr Embedder or a model name; query_instruction: the task instruction queries get (None:
        the recipe's plain query form); documents: whether embed_documents' strings are texts or images."""
        if documents not in ("text", "image"):
            raise ValueError(f"documents must be 'text' or 'image', got {documents!r}")
        self.embedder = as_embedder(embedder)
        self.query_instruction = query_instruction
        self.documents = documents
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One L2-normalised vector per document (each a text, or with documents='image' an image reference)."""
        if self.documents == "image":
            return self.embed_image(texts)
        return embed_documents(self.embedder, [Item(text=t) for t in texts], self.batch_size)

    def embed_query(self, text: str) -> list[float]:
        return embed_queries(self.embedder, [Item(text=text)], self.query_instruction, self.batch_size)[0]

    def embed_image(self, uris: list[ImageRef]) -> list[list[float]]:
        """Image documents: file paths, data: URLs or bytes."""
        return embed_documents(self.embedder, [Item(image=image_of(u)) for u in uris], self.batch_size)

    def embed_image_query(self, uri: ImageRef, text: str | None = None) -> list[float]:
        """A query with an image, and optionally text (a composed query: 'this, but in red')."""
        item = Item(text=text, image=image_of(uri))
        return embed_queries(self.embedder, [item], self.query_instruction, self.batch_size)[0]
