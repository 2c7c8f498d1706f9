"""The point-wise re-ranker learns: a few LoRA steps of `train_reranker` on a tiny Qwen2-VL lower the Yes/No loss
and make P(Yes) separate positives from negatives, which the untrained model does not.

Task: query "a red circle" → relevant candidate "red", irrelevant ones the other colour words. Text-only on
purpose: it is the smallest task a random tiny MLLM learns within seconds on CPU; the image path of the same
code is covered by the P(Yes) parity test (test_prompted.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from umr.items import Item
from umr.models.tiny import build_tiny
from umr.rerank.prompted import Reranker
from umr.train.data import Pair, write_pairs
from umr.train.lora import LoraSpec
from umr.train.reranker import RerankTrainConfig, train_reranker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
COLOURS = ("red", "blue", "green", "yellow")


def _pairs() -> list[Pair]:
    return [Pair(Item(text=f"a {c} {shape}"), Item(text=c), [Item(text=o) for o in COLOURS if o != c])
            for c in COLOURS for shape in ("circle", "square")]


def judge(rr: Reranker, pairs: list[Pair]) -> tuple[float, float]:
    """(separation, loss) over every pair: mean P(Yes) of the positives − that of the negatives, and the balanced
    point-wise loss ½·mean(−log P(Yes) | positive) + ½·mean(−log P(No) | negative)."""
    pos = np.array([rr.score(p.query, [p.positive])[0] for p in pairs], dtype=np.float64)
    neg = np.concatenate([rr.score(p.query, p.negatives) for p in pairs]).astype(np.float64)
    loss = 0.5 * np.mean(-np.log(pos)) + 0.5 * np.mean(-np.log(1 - neg))
    return float(pos.mean() - neg.mean()), float(loss)


@pytest.mark.slow
def test_pointwise_training_lowers_loss_and_separates_p_yes(tmp_path: Path) -> None:
    model = build_tiny("gme", tmp_path / "gme")
    pairs = _pairs()
    data = write_pairs(tmp_path / "pairs.jsonl", pairs)
    sep0, loss0 = judge(Reranker(model, device="cpu"), pairs)
    final = train_reranker(RerankTrainConfig(model=str(model), data=str(data), output_dir=str(tmp_path / "rr"),
                                             lora=LoraSpec(r=8, alpha=16, dropout=0.0), lr=1e-3, epochs=100,
                                             max_steps=60, batch_size=8, seed=0, device="cpu"))
    assert len((tmp_path / "rr" / "log.jsonl").read_text().splitlines()) == 60  # one line a step
    sep1, loss1 = judge(Reranker(final, device="cpu"), pairs)
    print(f"separation {sep0:.3f} → {sep1:.3f}, loss {loss0:.3f} → {loss1:.3f}")
    assert loss1 < loss0 - 0.03  # ln 2 ≈ 0.693: the loss of a model that cannot tell the two apart
    assert sep1 > sep0 + 0.1
