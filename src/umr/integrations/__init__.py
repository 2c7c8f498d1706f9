"""umr embedders inside RAG frameworks: a LangChain `Embeddings` and a LlamaIndex `MultiModalEmbedding`.

    from umr.integrations.langchain import UmrEmbeddings            # pip install 'umr[langchain]'
    from umr.integrations.llamaindex import UmrMultiModalEmbedding  # pip install 'umr[llamaindex]'

Both wrap any umr `Embedder` (or a model name for `umr.load_embedder`): documents are embedded as `umr embed`
embeds them (no instruction), queries with the query instruction, as `umr search` does; images may be file
paths, data: URLs or bytes. The frameworks are imported only by their own module, so `import umr` never needs
them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["UmrEmbeddings", "UmrMultiModalEmbedding"]


def __getattr__(name: str) -> Any:
    if name == "UmrEmbeddings":
        from umr.integrations.langchain import UmrEmbeddings

        return UmrEmbeddings
    if name == "UmrMultiModalEmbedding":
        from umr.integrations.llamaindex import UmrMultiModalEmbedding

        return UmrMultiModalEmbedding
    raise AttributeError(f"module 'umr.integrations' has no attribute {name!r}")
