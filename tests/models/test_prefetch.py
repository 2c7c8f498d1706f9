"""Batches prepared in worker processes: same vectors, same order, same errors as preparing them inline."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from mllm_support import draw

from umr import Item
from umr.errors import UmrError
from umr.items import ItemError
from umr.models import prefetch
from umr.models.base import resolve_dtype
from umr.models.prefetch import MIN_BATCHES_FOR_WORKERS, workers_for

COLOURS = ["red", "green", "blue", "yellow"]


def corpus(n: int = 12) -> list[Item]:
    """Texts of several lengths and pictures, so length sorting reorders them and batches differ in width."""
    return [Item(id=f"i{k}", text="a small striped shape " * (1 + k % 5) if k % 3 else None,
                 image=draw(COLOURS[k % 4], "circle" if k % 2 else "square") if k % 3 != 1 else None)
            for k in range(n)]


@pytest.mark.parametrize("recipe", ["gme", "mm-embed"])
def test_workers_give_the_same_vectors_in_input_order(recipe: str, embedders) -> None:
    emb = embedders[recipe]
    items = corpus()
    inline = emb.encode(items, batch_size=2, num_workers=0)
    pooled = emb.encode(items, batch_size=2, num_workers=2)
    np.testing.assert_array_equal(pooled, inline)
    # and in input order: each row is what the item gets on its own
    np.testing.assert_allclose(pooled[[0, 5, 10]], emb.encode([items[0], items[5], items[10]]), atol=1e-5)


def test_batches_are_prepared_in_other_processes(embedders, monkeypatch: pytest.MonkeyPatch) -> None:
    emb = embedders["gme"]
    seen: list[int] = []
    prepare_host, forward = emb.prepare_host, emb.forward
    monkeypatch.setattr(emb, "prepare_host", lambda items: {**prepare_host(items), "pid": os.getpid()})
    monkeypatch.setattr(emb, "forward", lambda batch: seen.append(batch["pid"]) or forward(batch))
    emb.encode(corpus(), batch_size=2, num_workers=2)
    assert len(seen) == 6 and os.getpid() not in seen
    seen.clear()
    emb.encode(corpus(2), batch_size=2, num_workers=2)  # one batch: not worth a process
    assert seen == [os.getpid()]


def test_a_bad_item_met_in_a_worker_names_itself(embedders, tmp_path) -> None:
    items = corpus()
    items[7] = Item(id="broken-7", image=str(tmp_path / "missing.jpg"), text="x")
    with pytest.raises(ItemError, match=r"item 'broken-7': image file not found: .*missing\.jpg"):
        embedders["gme"].encode(items, batch_size=2, num_workers=2)


def test_item_error_survives_pickling() -> None:
    err = ItemError(Item(id="q9", text="t"), "too long", "shorten it")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ItemError and str(back) == str(err) and back.item.id == "q9" and back.hint == "shorten it"


def test_worker_count_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(prefetch, "cpu_count", lambda: 2)
    assert workers_for(None, cpu, 100) == 1 and workers_for(None, cuda, 100) == 1
    monkeypatch.setattr(prefetch, "cpu_count", lambda: 32)
    assert workers_for(None, cuda, 100) == 8 and workers_for(None, cpu, 100) == 1
    assert workers_for(6, cpu, MIN_BATCHES_FOR_WORKERS - 1) == 0  # small jobs stay inline
    assert workers_for(6, cpu, 5) == 4  # never more than the batches after the first
    monkeypatch.setattr(prefetch, "cpu_count", lambda: 1)
    assert workers_for(None, cpu, 100) == 0
    with pytest.raises(UmrError, match="num_workers must be >= 0"):
        workers_for(-1, cpu, 100)


def test_dtype_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from umr.models import base

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_dtype(None, cpu) == torch.float32 and resolve_dtype(None, cuda) == torch.bfloat16
    monkeypatch.setattr(base, "cpu_has_amx", lambda: False)
    assert resolve_dtype("auto", cpu) == torch.float32 and resolve_dtype("auto", cuda) == torch.bfloat16
    monkeypatch.setattr(base, "cpu_has_amx", lambda: True)
    assert resolve_dtype("auto", cpu) == torch.bfloat16
