"""The `Embedder` contract shared by every model in umr.

An embedder turns Items into L2-normalised float32 vectors. Subclasses implement two steps, so training can
reuse them with gradients on:

    prepare(items)  -> a batch of model inputs (tokenised, images processed, padded)
    forward(batch)  -> torch.Tensor [b, d], *not yet normalised*

Users call `encode_query(items, instruction=None)` and `encode_document(items)` (sentence-transformers' names;
`encode_queries` / `encode_corpus` are the same methods): they give each item its role, which the recipe's prompt
renders (`Item.is_query`), and call `encode`. `encode` adds what every user wants around those steps:
length-sorted micro-batches under a token budget (less padding, fewer wasted FLOPs), `torch.inference_mode`, a
progress bar, and results back in input order.
Embedders whose preparation is heavy (images) also split prepare into `prepare_host(items)` (CPU tensors, run by
worker processes a few batches ahead of the model, see prefetch.py) and `to_device(batch)`.

A trainable embedder also says what training updates and how it is saved, so the trainer need not guess:

    trainable_modules() -> {name: torch.nn.Module}   (checkpoint weights are keyed "{name}.{parameter}")
    save_pretrained(out_dir) -> Path                 (a folder `load_embedder` reads back)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from umr.errors import UmrError
from umr.items import ROLES, Item, Role, as_items
from umr.models.prefetch import prepared_batches, workers_for

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None / "auto" → cuda when available, else cpu; a name torch does not know, or a GPU this machine does not
    have, is an error naming it (torch's own errors surfaced as tracebacks deep in model loading)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UmrError(f"device {device!r} is not a torch device; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UmrError(f"device {device!r}: this machine has no usable CUDA GPU (torch {torch.__version__}); "
                           "use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise UmrError(f"device {device!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return dev


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles for bf16 (Sapphire Rapids and later), where oneDNN's bf16 matmuls beat fp32
    several times over. AVX512-BF16 alone does not: bf16 encoded at 0.24-0.79x fp32's rate on such a CPU."""
    try:
        return " amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None: bf16 on GPU, fp32 on CPU (reproducible numbers, what training uses, and faster on most CPUs).
    "auto": bf16 on GPU and on an AMX CPU, else fp32. bf16 vectors stay within cosine 0.998 of fp32 on the sharp
    parity models of the Qwen2-VL recipes (MM-Embed's: 0.997), 0.9999 on ordinary ones; docs/recipes.md, "Speed"."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" or cpu_has_amx() else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError as exc:
        raise UmrError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPES)}") from exc


def plan_batches(costs: Sequence[int], max_items: int, max_tokens: int | None) -> list[list[int]]:
    """Group item indices, sorted by cost, into batches of ≤ max_items whose padded size ≤ max_tokens.

    Padded size = items in batch × largest cost in batch, since padding fills every row to the longest.
    An item over the budget on its own still gets a batch of one.
    """
    order = sorted(range(len(costs)), key=lambda i: costs[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        widest = max(costs[i], max((costs[j] for j in current), default=0))
        if current and (len(current) >= max_items or (max_tokens and widest * (len(current) + 1) > max_tokens)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class Embedder(ABC):
    """Items in, normalised float32 [n, d] out. See module docstring for the two steps subclasses provide."""

    name: str = "embedder"
    #: padded tokens per micro-batch; None = no token budget, only batch_size
    max_batch_tokens: int | None = None
    #: processes preparing batches ahead of the model in `encode`; None = prefetch.default_workers (CLIs: --workers)
    num_workers: int | None = None
    #: whether prepare_host is worth a worker process (image decoding, processors); cheap ones stay inline
    parallel_prepare: bool = False

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding size d."""

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @abstractmethod
    def prepare(self, items: Sequence[Item]) -> Any:
        """Model inputs for one micro-batch (already on self.device)."""

    def prepare_host(self, items: Sequence[Item]) -> Any:
        """prepare() on the CPU only: what a worker process runs. Embedders with parallel_prepare override it."""
        return self.prepare(items)

    def to_device(self, batch: Any) -> Any:
        """A prepare_host batch moved to self.device (the tensors of a dict; anything else as it is)."""
        if not isinstance(batch, dict) or self.device.type == "cpu":
            return batch
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                for k, v in batch.items()}

    @abstractmethod
    def forward(self, batch: Any) -> torch.Tensor:
        """Un-normalised embeddings [b, d] for a prepared batch; differentiable when grad is enabled."""

    def text_problem(self, item: Item) -> str | None:
        """Why this model cannot take `item`'s text (MLLMs: it holds a special token), or None; callers screen
        items with it so that one bad item is named and skipped instead of failing a whole batch."""
        return None

    def cost(self, item: Item) -> int:
        """Rough token count, used only to sort and pack micro-batches."""
        return len(item.text or "") // 4 + (64 if item.image is not None else 0) + 8

    def embed(self, items: Sequence[Item]) -> torch.Tensor:
        """Normalised embeddings [b, d] for one micro-batch, with gradients if enabled (training)."""
        return F.normalize(self.forward(self.prepare(items)).float(), dim=-1)

    def encode(self, items: Iterable[Item | str], batch_size: int = 16, show_progress: bool = False,
               desc: str = "embedding", num_workers: int | None = None) -> np.ndarray:
        """Embed items (any mix of modalities) → float32 [n, d], L2-normalised, in input order.

        num_workers: processes preparing batches while the model runs (None: self.num_workers, else a default
        for this machine; 0: inline). Small jobs are always prepared inline."""
        items = as_items(items)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        if not items:
            return out
        batches = plan_batches([self.cost(it) for it in items], batch_size, self.max_batch_tokens)
        if self.parallel_prepare:
            requested = self.num_workers if num_workers is None else num_workers
            workers = workers_for(requested, self.device, len(batches))
            ready = prepared_batches(self.prepare_host, [[items[i] for i in idx] for idx in batches], workers,
                                     pin_memory=workers > 0 and self.device.type == "cuda")
        else:
            ready = (self.prepare([items[i] for i in idx]) for idx in batches)
        # closing: an error in forward stops the workers now, not when the generator is collected
        with torch.inference_mode(), closing(ready), tqdm(total=len(items), desc=desc, disable=not show_progress,
                                                          unit="item") as bar:
            for idx, batch in zip(batches, ready):
                vecs = F.normalize(self.forward(self.to_device(batch)).float(), dim=-1)
                out[idx] = vecs.cpu().numpy()
                bar.update(len(idx))
        return out

    def encode_query(self, items: Iterable[Item | str], instruction: str | None = None, **kw: Any) -> np.ndarray:
        """Queries → float32 [n, d]: `instruction`, when given, replaces each item's own (the recipe decides where
        it goes; a query without one still renders as a query, e.g. MM-Embed's "Query: " prefix)."""
        items = as_items(items)
        if instruction is not None:
            items = [it.with_instruction(instruction) for it in items]
        return self.encode([it.with_role("query") for it in items], **kw)

    def encode_document(self, items: Iterable[Item | str], **kw: Any) -> np.ndarray:
        """Documents (candidates) → float32 [n, d], without instruction: every reference recipe embeds them plainly."""
        return self.encode([it.with_instruction(None).with_role("document") for it in as_items(items)], **kw)

    def encode_role(self, role: Role, items: Iterable[Item | str], **kw: Any) -> np.ndarray:
        """`encode_query` or `encode_document` by name, for code that moves the role along (embedding jobs, serve).
        Queries keep their own instructions."""
        if role == "query":
            return self.encode_query(items, **kw)
        if role == "document":
            return self.encode_document(items, **kw)
        raise UmrError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")

    # the names umr used first; subclasses may override either name of a pair (see __init_subclass__)
    encode_queries = encode_query
    encode_corpus = encode_document

    def __init_subclass__(cls, **kw: Any) -> None:
        """An embedder that overrides one name of a pair (encode_query / encode_queries, encode_document /
        encode_corpus) gets its override under both, so callers of either name see it."""
        super().__init_subclass__(**kw)
        for a, b in (("encode_query", "encode_queries"), ("encode_document", "encode_corpus")):
            if (a in cls.__dict__) != (b in cls.__dict__):
                setattr(cls, b if a in cls.__dict__ else a, cls.__dict__[a if a in cls.__dict__ else b])

    def describe(self) -> dict[str, Any]:
        """Settings shown by `umr recipes` and stored in manifests."""
        return {"name": self.name, "dim": self.dim}

    # -- training and saving: the defaults are for embedders that do not train (baselines, wrappers) -------
    def trainable_modules(self) -> dict[str, torch.nn.Module]:
        """The torch modules training updates, by a stable name (checkpoints key their weights with it)."""
        raise UmrError(f"{type(self).__name__} has no trainable torch module; train an MLLM, CLIP-SF or text "
                       "embedder")

    def mllm_model(self) -> torch.nn.Module | None:
        """The multimodal LLM that LoRA, vision freezing and gradient checkpointing act on; None for embedders
        without one (CLIP-SF, text), which train whole or with `frozen` patterns."""
        return None

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write a folder `umr.models.registry.load_embedder` reads back; returns it."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved as a model folder")
