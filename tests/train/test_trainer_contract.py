"""The Trainer asks the Embedder contract what to train and how to save (`trainable_modules`, `save_pretrained`):
an embedder with none of the attributes the trainer used to probe (`backbone`, `st`, `model`) trains, checkpoints
and saves through those two methods; one that cannot train says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from umr.items import Item
from umr.models.base import Embedder
from umr.train.config import TrainConfig
from umr.train.data import Pair, write_pairs
from umr.train.distill import DistillTrainer
from umr.train.stages import make_trainer
from umr.train.trainer import Trainer


class BagOfLetters(Embedder):
    """26 letter counts → a linear layer: trainable, and holding its layer under a name the trainer cannot guess."""

    name = "bag-of-letters"

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.head = torch.nn.Linear(26, 8)

    @property
    def dim(self) -> int:
        return 8

    def prepare(self, items):
        rows = np.zeros((len(items), 26), dtype=np.float32)
        for i, it in enumerate(items):
            for ch in (it.text or "").lower():
                if "a" <= ch <= "z":
                    rows[i, ord(ch) - 97] += 1
        return torch.from_numpy(rows)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.head(batch)

    def trainable_modules(self) -> dict[str, torch.nn.Module]:
        return {"head": self.head}

    def save_pretrained(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "head.json").write_text(json.dumps(self.head.weight.tolist()))
        return out


class Frozen(BagOfLetters):
    trainable_modules = Embedder.trainable_modules


def _pairs() -> list[Pair]:
    words = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
    return [Pair(Item(text=f"the {w} one"), Item(text=w), []) for w in words]


def test_trainer_trains_and_saves_through_the_contract(tmp_path: Path) -> None:
    emb = BagOfLetters()
    before = emb.head.weight.detach().clone()
    cfg = TrainConfig.of(output_dir=str(tmp_path / "run"), batch_size=4, max_steps=2, save_every=2, lr=1e-2)
    trainer = Trainer(cfg, embedder=emb, pairs=_pairs())
    assert set(trainer.named_trainable()) == {"head.weight", "head.bias"}
    assert trainer.fit()["steps"] == 2
    assert not torch.equal(before, emb.head.weight)
    state = torch.load(tmp_path / "run" / "checkpoint-2" / "trainer_state.pt", weights_only=False)
    assert set(state["weights"]) == {"head.weight", "head.bias"}
    final = trainer.save_final()
    assert final == tmp_path / "run" / "final"
    assert json.loads((final / "head.json").read_text()) == emb.head.weight.tolist()


def test_an_embedder_that_cannot_train_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Frozen has no trainable torch module"):
        Trainer(TrainConfig.of(output_dir=str(tmp_path / "run"), batch_size=4), embedder=Frozen(), pairs=_pairs())


def test_lora_on_an_embedder_without_an_mllm_is_refused(tmp_path: Path) -> None:
    """LoRA used to be skipped without a word when the embedder had no `backbone`; now the contract's
    mllm_model() says there is none and the config is refused, naming the field."""
    with pytest.raises(ValueError, match="lora: LoRA applies to MLLM embedders"):
        Trainer(TrainConfig.of(output_dir=str(tmp_path), lora={"r": 4}), embedder=BagOfLetters(), pairs=_pairs())


def test_each_trainer_refuses_a_config_of_another_type(tmp_path: Path) -> None:
    """`Trainer(distill_config)` used to train InfoNCE on the teacher file's pairs without a word."""
    with pytest.raises(ValueError, match=r"Trainer trains `type: contrastive` configs, not `type: distill`"):
        Trainer(TrainConfig.of(type="distill", output_dir=str(tmp_path)), embedder=BagOfLetters(), pairs=_pairs())
    with pytest.raises(ValueError, match=r"DistillTrainer trains `type: distill` configs, not `type: contrastive`"):
        DistillTrainer(TrainConfig.of(data="no-such-teacher.jsonl"), embedder=BagOfLetters())  # before reading it


def test_make_trainer_builds_the_class_of_the_config_type(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", _pairs())
    teacher = tmp_path / "teacher.jsonl"
    teacher.write_text("".join(json.dumps({"query": {"text": f"the {p.positive.text} one"},
                                           "candidates": [{"text": w} for w in ("red", "blue", p.positive.text)],
                                           "teacher": [0.1, 0.2, 0.9]}) + "\n" for p in _pairs()))
    built = {kind: make_trainer(TrainConfig.of(type=kind, data=str(data), batch_size=4,
                                               output_dir=str(tmp_path / kind)), embedder=BagOfLetters())
             for kind, data in (("contrastive", pairs), ("distill", teacher))}
    assert {kind: type(t) for kind, t in built.items()} == {"contrastive": Trainer, "distill": DistillTrainer}
    assert built["distill"].n == 3 and len(built["contrastive"].pairs) == 8


def test_hard_negative_weight_reaches_the_trainer_loss(tmp_path: Path) -> None:
    """The option is read by the Trainer: the same first step weighs its mined negatives less at w 0.3."""
    pairs = [Pair(p.query, p.positive, [Item(text=p.positive.text + "s")]) for p in _pairs()]
    first = {}
    for w in (1.0, 0.3):
        cfg = TrainConfig.of(output_dir=str(tmp_path / str(w)), batch_size=4, num_negatives=1,
                             hard_negative_weight=w, learn_temperature=False)
        trainer = Trainer(cfg, embedder=BagOfLetters(), pairs=pairs)
        batch = trainer.epoch_batches(0)[0]
        first[w] = trainer.train_step(batch.queries, batch.positives, batch.negatives)
    assert first[0.3] < first[1.0] - 1e-3
