"""The settings of an M-BEIR evaluation run (`umr.eval.mbeir.evaluate`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from umr.eval.metrics import DEFAULT_KS

POOLS = ("local", "global", "global-modality")


@dataclass
class EvalOptions:
    """Settings of one evaluation run."""

    pool: str = "local"  # "local": each set against its own pool; "global": every set against the union pool;
    # "global-modality": the union pool's candidates of the task's modality only — what the global pool costs
    # by its size alone, with no room for modality bias (global-modality minus global = the bias' cost)
    split: str = "test"  # which query/qrels split to evaluate
    tasks: list[str] | None = None  # filter: set names, datasets, "task7" or "7"; None = all sets
    ks: tuple[int, ...] = DEFAULT_KS  # recall cut-offs
    instructions: bool = True  # prepend the TSV's task instruction to queries (every reference recipe does)
    batch_size: int = 16  # items per forward pass (tiny models on CPU: 16 beats 64, less padding)
    cache_dir: Path | None = None  # embedding cache root; None = no cache
    check_images: bool = True  # stat every image path while loading (catches a partial download early)
    strict: bool = True  # unknown same-dataset dids are errors (False: counted as absent positives)
    bias_k: int = 10  # top-k used by the modality-bias share
    show_progress: bool = False
    rerank: int = 0  # re-score each query's top-N with an MLLM re-ranker (0 = off); needs evaluate(reranker=…)
    fuse_weight: float = 1.0  # re-ranked score = cos + fuse_weight · P(Yes) (umr.rerank.fusion)
    # local pools: take their vectors from the split's global pool (their union) instead of embedding each one;
    # with a cache_dir shared with a global run, local pools then cost nothing to embed
    local_from_global: bool = False
    ties: str = "pool-order"  # "pool-order": the earlier pool candidate wins a tie; or "pessimistic"
    format_text: bool = False  # UniIR's text normalisation of queries and candidates (umr.data.mbeir.format_text)
    shard_size: int = 1000  # items per embedding-store shard: the unit of resume and of work between ranks
    store_dtype: str = "float32"  # the embedding cache's vectors: "float16" halves disk and RAM (UniIR's choice)
    search_device: str | None = None  # where the exact block search multiplies; None: cuda when there is one
    search_kernel: str = "auto"  # umr.index.block_search: "torch", "faiss" (CPU) or "auto" (the faster here)
    check_memory: bool = True  # estimate the run's memory before embedding and stop when the machine has less
