"""umr Embedders inside mteb: a local retrieval task (no hub), a perfect embedder, MiniLM vs random."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

pytest.importorskip("mteb")

from umr.eval.mteb_wrapper import MTEBEncoder, local_retrieval_task, main_scores
from umr.items import Item
from umr.models.base import Embedder
from umr.models.baselines import RandomEmbedder

ANIMALS = ["otter", "falcon", "badger", "lynx", "heron", "walrus", "gecko", "bison", "puffin", "marmot", "cobra",
           "tapir"]
PLACES = ["river banks", "cliffs", "woodland", "snowy forests", "marshes", "arctic ice", "deserts", "prairies",
          "sea cliffs", "mountains", "jungles", "rainforests"]
FOODS = ["fish", "pigeons", "worms", "hares", "frogs", "clams", "insects", "grass", "sand eels", "roots", "rodents",
         "fruit"]


def _task(instruction: str | None = None):  # an mteb task
    corpus = {f"d{i}": f"The {a} lives in {p} and feeds mostly on {f}." for i, (a, p, f)
              in enumerate(zip(ANIMALS, PLACES, FOODS, strict=True))}
    queries = {f"q{i}": f"What does the {a} eat?" for i, a in enumerate(ANIMALS)}
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(len(ANIMALS))}
    return local_retrieval_task("UmrLocalAnimals", corpus, queries, qrels, instruction=instruction)


class _Perfect(Embedder):
    """A one-hot per animal: each query's only nearest document is its relevant one."""

    name = "perfect"

    def __init__(self) -> None:
        self.seen_instructions: list[str | None] = []

    @property
    def dim(self) -> int:
        return len(ANIMALS)

    def prepare(self, items: Sequence[Item]) -> list[Item]:
        self.seen_instructions += [it.instruction for it in items]
        return list(items)

    def forward(self, batch: list[Item]) -> torch.Tensor:
        rows = [np.eye(self.dim, dtype=np.float32)[next(i for i, a in enumerate(ANIMALS) if a in it.text)]
                for it in batch]
        return torch.from_numpy(np.stack(rows))


def test_perfect_embedder_scores_one_and_gets_the_instruction() -> None:
    emb = _Perfect()
    scores = main_scores(MTEBEncoder(emb), [_task("Find the passage about the animal.")])["UmrLocalAnimals"]
    assert scores["ndcg_at_10"] == pytest.approx(1.0)
    assert scores["recall_at_1"] == pytest.approx(1.0)
    assert emb.seen_instructions.count("Find the passage about the animal.") == len(ANIMALS)  # queries only
    assert emb.seen_instructions.count(None) == len(ANIMALS)  # documents are embedded plainly


def test_minilm_beats_random() -> None:
    from umr.models.registry import load_embedder

    task = _task()
    minilm = main_scores(MTEBEncoder(load_embedder("text", device="cpu")), [task])["UmrLocalAnimals"]
    rand = main_scores(MTEBEncoder(RandomEmbedder(dim=32)), [_task()])["UmrLocalAnimals"]
    assert minilm["ndcg_at_10"] > 0.9
    assert minilm["ndcg_at_10"] > rand["ndcg_at_10"] + 0.3
