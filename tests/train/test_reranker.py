"""Point-wise re-ranker data and loss: one random negative per positive; CE over [Yes, No] by hand."""

from __future__ import annotations

import math
import random

import pytest
import torch

from umr.items import Item
from umr.train.data import Pair
from umr.train.reranker import pointwise_examples, pointwise_loss


def test_one_random_negative_per_positive() -> None:
    negs = [Item(text=f"n{i}") for i in range(5)]
    pairs = [Pair(Item(text="q0"), Item(text="p0"), negs), Pair(Item(text="q1"), Item(text="p1"), [])]
    ex = pointwise_examples(pairs, random.Random(0))
    assert [(q.text, y) for q, _, y in ex] == [("q0", 0), ("q0", 1), ("q1", 0)]  # no negatives: positive only
    assert ex[0][1].text == "p0" and ex[1][1] in negs
    drawn = {pointwise_examples(pairs[:1], random.Random(s))[1][1].text for s in range(40)}
    assert len(drawn) > 1  # drawn at random, not always the top one


def test_pointwise_loss_by_hand() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.5, 1.5]])
    labels = torch.tensor([0, 1])
    want = (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(math.exp(1.5) / (math.exp(0.5) + math.exp(1.5)))) / 2
    assert pointwise_loss(logits, labels).item() == pytest.approx(want, rel=1e-6)
