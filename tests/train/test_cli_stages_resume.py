"""`umr train`: YAML config round trip, two chained LoRA stages, and resume == uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from umr import load_embedder
from umr.cli import main
from umr.items import Item
from umr.train.config import TrainConfig
from umr.train.data import Pair, write_pairs
from umr.train.lora import LoraSpec
from umr.train.trainer import Trainer

CONFIGS = Path(__file__).parents[2] / "src" / "umr" / "train" / "configs"


def make_pairs(folder: Path, draw, n: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    colours = ["red", "green", "blue", "yellow"]
    pairs = []
    for i in range(n):
        c = colours[i % 4]
        draw(c, jitter=i % 5).save(folder / f"{i}.png")
        pairs.append(Pair(Item(text=f"a {c} circle"), Item(image=str(folder / f"{i}.png")),
                          [Item(text=f"a {colours[(i + 1) % 4]} square")]))
    return write_pairs(folder / "pairs.jsonl", pairs)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_example_configs_round_trip(name: str, tmp_path) -> None:
    config = TrainConfig.from_yaml(CONFIGS / name)
    again = TrainConfig.from_yaml(tmp_path / "c.yaml") if config.to_yaml(tmp_path / "c.yaml") else None
    assert again == config
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({**yaml.safe_load((CONFIGS / name).read_text()), "learning_rate": 1})


def test_two_stages_chain_and_merge(tiny_gme_dir, draw, tmp_path, capsys) -> None:
    data = make_pairs(tmp_path / "data", draw)
    config = {"model": tiny_gme_dir, "output_dir": str(tmp_path / "run"), "batch_size": 4, "micro_batch_size": 2,
              "num_negatives": 1, "lr": 1e-3, "max_steps": 2, "log_every": 1,
              "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
              "stages": [{"name": "one", "data": str(data)},
                         {"name": "two", "data": str(data), "symmetric": True, "lora": {"r": 2, "alpha": 4}}]}
    (tmp_path / "stages.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(tmp_path / "stages.yaml")]) == 0
    one, two = tmp_path / "run" / "stage-0-one", tmp_path / "run" / "stage-1-two"
    assert f"stage {one}: 2 steps, loss" in capsys.readouterr().out  # umr.train's progress logs reach stdout
    assert main(["train", "--config", str(tmp_path / "stages.yaml"), "--resume"]) == 0
    assert f"stage {two}: already finished, skipped" in capsys.readouterr().out
    marker = json.loads((two / "adapter" / "umr_train.json").read_text())
    assert Path(marker["base_model"]) == one / "final"  # stage two trained on stage one's merged model
    assert json.loads((two / "adapter" / "adapter_config.json").read_text())["r"] == 2
    assert len((one / "log.jsonl").read_text().splitlines()) == 2
    vecs = load_embedder(two / "final", device="cpu").encode([Item(text="a red circle")])
    first = load_embedder(one / "final", device="cpu").encode([Item(text="a red circle")])
    assert vecs.shape == first.shape and not torch.allclose(torch.tensor(vecs), torch.tensor(first))


def test_resume_gives_identical_weights(tiny_gme_dir, draw, tmp_path) -> None:
    data = make_pairs(tmp_path / "data", draw)

    def trainer(out: str) -> Trainer:
        config = TrainConfig.of(model=tiny_gme_dir, data=str(data), output_dir=str(tmp_path / out), batch_size=4,
                             epochs=2, lr=1e-3, schedule="linear", num_negatives=1, save_every=1,
                             lora=LoraSpec(r=4, alpha=8, dropout=0.1))  # dropout: the RNG must be restored too
        return Trainer(config, embedder=load_embedder(tiny_gme_dir, device="cpu"))

    straight = trainer("a")
    straight.fit()
    interrupted = trainer("b")
    save = interrupted.save_checkpoint

    def save_then_crash() -> Path:
        path = save()
        if interrupted.step == 3:  # a crash right after checkpoint-3 is on disk
            raise KeyboardInterrupt
        return path

    interrupted.save_checkpoint = save_then_crash
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    resumed = trainer("b")
    assert resumed.fit(resume=True)["steps"] == 4
    assert sorted(p.name for p in (tmp_path / "b").glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    want, got = straight.named_trainable(), resumed.named_trainable()
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    assert float(straight.loss_fn.tau) == float(resumed.loss_fn.tau)
