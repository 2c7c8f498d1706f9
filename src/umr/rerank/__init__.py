"""MLLM re-ranking: P(Yes) scores (zero-shot or trained point-wise) fused with retrieval cosines."""

from typing import Any

from umr.rerank.fusion import fuse, fused_order, rerank_list

__all__ = ["Reranker", "fuse", "fused_order", "rerank_list"]


def __getattr__(name: str) -> Any:  # lazy: the re-ranker pulls in transformers
    if name == "Reranker":
        from umr.rerank.prompted import Reranker

        return Reranker
    raise AttributeError(name)
