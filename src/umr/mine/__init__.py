"""Hard-negative mining: plain top-k (U-MARVEL), modality-aware (MM-Embed), false-negative filter (NV-Retriever)."""

from typing import Any

from umr.mine.negatives import MineOptions, RankedCandidate, Selection, select_negatives

__all__ = ["MineOptions", "RankedCandidate", "Selection", "mine", "select_negatives"]


def __getattr__(name: str) -> Any:  # lazy: the job pulls in faiss and the embedding store
    if name == "mine":
        from umr.mine.job import mine

        return mine
    raise AttributeError(name)
