"""GradCache (Gao et al. 2021): a large contrastive batch in the memory of one micro-batch.

The loss needs every embedding of the batch at once, but its gradient with respect to the *parameters* splits:
dL/dθ = Σ_i (dL/de_i) · (de_i/dθ). So:

1. embed every micro-batch without a graph (cheap in memory) and keep the embeddings e;
2. compute the loss on e as leaf tensors and backprop to get dL/de (the "gradient cache"); loss parameters
   such as a learnable τ get their gradients here;
3. embed each micro-batch again with a graph and backprop (e_chunk · cached_grad_chunk).sum(), which adds
   exactly that chunk's share of dL/dθ.

Step 3 replays each micro-batch's random state from step 1, so dropout masks match and the result equals the
full-batch gradient. Prepared inputs (tokenised, images processed) from step 1 are reused in step 3.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from umr.errors import UmrError
from umr.items import Item, Role
from umr.models.base import Embedder

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


class RngState:
    """CPU (and current CUDA device) RNG state, captured now and replayable later."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    @contextmanager
    def replay(self) -> Iterator[None]:
        devices = list(range(torch.cuda.device_count())) if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state_all(self.cuda)
            yield


def chunks(items: Sequence[Item], size: int) -> list[list[Item]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def split_batch(queries: Sequence[Item], positives: Sequence[Item],
                negatives: Sequence[Sequence[Item]] | None) -> tuple[list[list[Item]], int]:
    """The groups to embed ([queries, positives, flat negatives]), each item given its role (`train_role`), and
    k negatives per query."""
    if len(queries) != len(positives):
        raise ValueError(f"{len(queries)} queries but {len(positives)} positives")
    groups = [[q.with_role(train_role(q)) for q in queries], [p.with_role("document") for p in positives]]
    k = 0
    if negatives:
        k = len(negatives[0])
        if any(len(n) != k for n in negatives) or len(negatives) != len(queries):
            raise UmrError("every query in a batch needs the same number of hard negatives")
        if k:
            groups.append([n.with_role("document") for row in negatives for n in row])
    return groups, k


def train_role(query: Item) -> Role:
    """The role a training query is embedded in: "query" when it carries an instruction, else "document".

    A stage that drops instructions (`instruction: ""`: U-MARVEL's and LamRA's text and caption stages, symmetric
    pairs) embeds its queries as plainly as their candidates, and the shipped configs' results are measured so.
    Evaluation differs here: `Embedder.encode_query` renders every query as one, instruction or not."""
    return "query" if query.instruction is not None else "document"


def _loss_on(reps: list[torch.Tensor], k: int, loss_fn: LossFn) -> torch.Tensor:
    neg = reps[2].reshape(reps[0].shape[0], k, -1) if k else None
    return loss_fn(reps[0], reps[1], neg)


def full_batch_loss(embedder: Embedder, loss_fn: LossFn, queries: Sequence[Item], positives: Sequence[Item],
                    negatives: Sequence[Sequence[Item]] | None = None) -> torch.Tensor:
    """The plain path: one forward per group with a graph; call .backward() on the result."""
    groups, k = split_batch(queries, positives, negatives)
    reps = [embedder.forward(embedder.prepare(g)).float() for g in groups]
    return _loss_on(reps, k, loss_fn)


def gradcache_backward(embedder: Embedder, loss_fn: LossFn, queries: Sequence[Item], positives: Sequence[Item],
                       negatives: Sequence[Sequence[Item]] | None = None, micro_batch: int = 8) -> torch.Tensor:
    """Accumulate into .grad what `full_batch_loss(...).backward()` would, holding one micro-batch graph at a
    time. Returns the (detached) loss."""
    if micro_batch < 1:
        raise UmrError(f"micro_batch must be ≥ 1, got {micro_batch}")
    groups, k = split_batch(queries, positives, negatives)
    prepared: list[list[tuple[Any, RngState]]] = []
    reps: list[torch.Tensor] = []
    with torch.no_grad():  # pass 1: embeddings only
        for group in groups:
            parts, outs = [], []
            for chunk in chunks(group, micro_batch):
                batch, state = embedder.prepare(chunk), RngState()
                outs.append(embedder.forward(batch).float())
                parts.append((batch, state))
            prepared.append(parts)
            reps.append(torch.cat(outs))
    leaves = [r.detach().requires_grad_(True) for r in reps]
    loss = _loss_on(leaves, k, loss_fn)
    loss.backward()  # fills leaves[i].grad, and loss parameters' .grad (τ)
    for parts, leaf in zip(prepared, leaves):  # pass 2: one graph at a time
        start = 0
        for batch, state in parts:
            with state.replay():
                out = embedder.forward(batch).float()
            grad = leaf.grad[start:start + out.shape[0]]
            start += out.shape[0]
            torch.autograd.backward(out, grad_tensors=grad)
    return loss.detach()
