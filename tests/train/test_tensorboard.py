"""`tensorboard: true` writes loss, τ, LR and samples/s scalars (the same numbers as log.jsonl) to an events file;
without the tensorboard package the run stops before training and says how to install it."""

from __future__ import annotations

import json
import sys

import pytest

from umr.items import Item
from umr.train.config import TrainConfig
from umr.train.data import Pair
from umr.train.trainer import Trainer


def colour_pairs(draw) -> list[Pair]:
    return [Pair(Item(text=f"a {c} circle"), Item(image=draw(c, jitter=j))) for c in ("red", "blue") for j in (0, 3)]


def test_tensorboard_events_hold_the_logged_scalars(tiny_gme, draw, tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = TrainConfig.of(output_dir=str(tmp_path / "run"), batch_size=2, max_steps=3, epochs=5, log_every=1,
                         tensorboard=True, lr=1e-3)
    Trainer(config, embedder=tiny_gme, pairs=colour_pairs(draw)).fit()
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/tau", "train/lr", "train/samples_per_s"} <= tags
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [r["step"] for r in log] == [1, 2, 3]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in log], abs=1e-5)


def test_tensorboard_folder_option(tiny_gme, draw, tmp_path) -> None:
    pytest.importorskip("tensorboard")
    config = TrainConfig.of(output_dir=str(tmp_path / "run"), batch_size=2, max_steps=1,
                            tensorboard=str(tmp_path / "tb"))
    Trainer(config, embedder=tiny_gme, pairs=colour_pairs(draw)).fit()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_missing_tensorboard_says_how_to_install(tiny_gme, draw, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    config = TrainConfig.of(output_dir=str(tmp_path / "run"), batch_size=2, max_steps=1, tensorboard=True)
    with pytest.raises(ImportError, match=r"pip install .*umr\[tensorboard\]"):
        Trainer(config, embedder=tiny_gme, pairs=colour_pairs(draw))
