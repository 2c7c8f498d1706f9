"""DeepSpeed ZeRO option: config validation and "auto" filling, the clear error without CUDA / deepspeed, and the
trainer's engine wiring checked with a stand-in engine (the real GPU path needs CUDA and is not run here)."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from umr.items import Item
from umr.train.config import TrainConfig
from umr.train.data import Pair
from umr.train.trainer import Trainer
from umr.train.zero import resolve_ds_config

ZERO2 = Path(__file__).parents[2] / "src" / "umr" / "train" / "configs" / "ds_zero2.json"


def test_shipped_zero2_config_fills_auto_values() -> None:
    ds = resolve_ds_config(TrainConfig.of(deepspeed=str(ZERO2), batch_size=64, grad_clip=0.5, dtype="bf16"), 4)
    assert ds["zero_optimization"]["stage"] == 2
    assert (ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == \
        (64, 16, 1)
    assert ds["gradient_clipping"] == 0.5 and ds["bf16"]["enabled"] is True
    assert resolve_ds_config(TrainConfig.of(deepspeed=str(ZERO2), dtype="fp32"))["bf16"]["enabled"] is False
    assert TrainConfig.from_dict({"deepspeed": str(ZERO2)}).run.deepspeed == str(ZERO2)  # valid configs parse


@pytest.mark.parametrize(("ds", "extra", "message"), [
    ({"zero_optimization": {"stage": 3}}, {}, "ZeRO stage 3 is not supported"),
    ({"optimizer": {"type": "Adam"}}, {}, "remove the `optimizer` section"),
    ({"scheduler": {"type": "WarmupLR"}}, {}, "remove the `scheduler` section"),
    ({"train_batch_size": 16}, {"batch_size": 32}, "train_batch_size=16 but umr needs 32"),
    ({"gradient_accumulation_steps": 4}, {}, "gradient_accumulation_steps=4"),
    ({}, {"micro_batch_size": 8}, "GradCache"),
    ({}, {"type": "distill"}, "only contrastive stages"),
])
def test_bad_deepspeed_options_fail_when_the_config_is_read(ds: dict, extra: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict({"deepspeed": ds, **extra})


def test_deepspeed_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        TrainConfig.from_dict({"deepspeed": str(tmp_path / "missing.json")})
    (tmp_path / "bad.json").write_text("{stage: 2")
    with pytest.raises(ValueError, match="not valid JSON"):
        TrainConfig.from_dict({"deepspeed": str(tmp_path / "bad.json")})
    with pytest.raises(ValueError, match="must divide by the 3 processes"):
        resolve_ds_config(TrainConfig.of(deepspeed={}, batch_size=8), world_size=3)


def test_without_deepspeed_or_cuda_the_error_says_what_to_install(monkeypatch) -> None:
    config = TrainConfig.of(deepspeed=str(ZERO2), batch_size=2)
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # not installed
    with pytest.raises(RuntimeError, match=r"DeepSpeed needs CUDA and `pip install deepspeed`.*not installed"):
        Trainer(config, pairs=[])
    monkeypatch.setitem(sys.modules, "deepspeed", types.ModuleType("deepspeed"))  # installed, but no GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"DeepSpeed needs CUDA.*no CUDA device"):
        Trainer(config, pairs=[])


class EngineOnlyOptimizer:
    """The optimizer `deepspeed.initialize` hands back: it steps only inside the engine's step, so a trainer that
    stepped (or zeroed) it around the engine fails here, as it would silently skip ZeRO's sharded update."""

    def __init__(self, inner: torch.optim.Optimizer, engine: StandInEngine) -> None:
        self.inner, self.engine = inner, engine

    def step(self) -> None:
        assert self.engine.stepping, "the trainer stepped the optimizer itself, bypassing the DeepSpeed engine"
        self.inner.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        assert self.engine.stepping, "the trainer zeroed the gradients itself, bypassing the DeepSpeed engine"
        self.inner.zero_grad(set_to_none=set_to_none)

    def __getattr__(self, name: str) -> object:  # state_dict, param_groups, …
        return getattr(self.inner, name)


class StandInEngine:
    """What DeepSpeed's engine does for ZeRO-1/2 on one process, minus the sharding. It owns the step: backward,
    clipping at its config's gradient_clipping (the norm counts every parameter it wraps, τ included), AdamW and the
    schedule, and it records each call and each norm before clipping."""

    def __init__(self, model, optimizer, lr_scheduler, config) -> None:
        self.model, self.scheduler, self.config = model, lr_scheduler, config
        self.optimizer = EngineOnlyOptimizer(optimizer, self)
        self.calls: list[str] = []
        self.norms: list[float] = []
        self.stepping = False
        self.saved: list[str] = []

    def backward(self, loss: torch.Tensor) -> None:
        self.calls.append("backward")
        loss.backward()

    def step(self) -> None:
        self.calls.append("step")
        params = [p for p in self.model.parameters() if p.grad is not None]
        self.norms.append(float(torch.nn.utils.clip_grad_norm_(params, self.config["gradient_clipping"])))
        self.stepping = True
        try:
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        finally:
            self.stepping = False

    def save_checkpoint(self, path: str, tag: str) -> None:
        Path(path, tag).mkdir(parents=True)
        self.saved.append(path)


def test_engine_path_matches_the_plain_step(tiny_gme_dir, draw, tmp_path, monkeypatch) -> None:
    from umr import load_embedder

    pairs = [Pair(Item(text=f"a {c} circle"), Item(image=draw(c, jitter=j))) for c in ("red", "blue") for j in (0, 3)]
    fake = types.ModuleType("deepspeed")
    fake.init_distributed = lambda: None
    fake.initialize = lambda model, optimizer, lr_scheduler, config: (
        (engine := StandInEngine(model, optimizer, lr_scheduler, config)), engine.optimizer, None, lr_scheduler)
    monkeypatch.setitem(sys.modules, "deepspeed", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)  # prepare_deepspeed sets single-process defaults; undone after

    def run(out: str, deepspeed: object) -> Trainer:
        config = TrainConfig.of(output_dir=str(tmp_path / out), batch_size=2, epochs=2, lr=1e-3, schedule="linear",
                             grad_clip=0.5, save_every=2, deepspeed=deepspeed, device="cpu")
        trainer = Trainer(config, embedder=load_embedder(tiny_gme_dir, device="cpu"), pairs=pairs)
        trainer.fit()
        return trainer

    plain, zero = run("plain", None), run("zero", json.loads(ZERO2.read_text()))
    assert os.environ["WORLD_SIZE"] == "1" and os.environ["MASTER_ADDR"] == "127.0.0.1"  # no launcher needed
    assert zero.engine is not None and zero.engine.config["train_batch_size"] == 2
    assert zero.optimizer is zero.engine.optimizer  # the trainer keeps the engine's optimizer, not its own
    assert zero.engine.calls == ["backward", "step"] * 4  # every one of the 4 steps went through the engine
    # the engine, not the trainer, clipped: the norms it saw were the raw ones, over the 0.5 it clips to
    assert max(zero.engine.norms) > 0.5
    assert [Path(p).name for p in zero.engine.saved] == ["checkpoint-2.tmp", "checkpoint-4.tmp"]
    assert (tmp_path / "zero" / "checkpoint-4" / "deepspeed").is_dir()  # the engine's shards sit in the checkpoint
    want, got = plain.named_trainable(), zero.named_trainable()
    # DeepSpeed's clipping norm also counts τ (the plain step clips the model only): ~1e-7 apart; one lr-1e-3
    # step more or less, or an unscaled update, moves weights by ~1e-3.
    # Key biases get no gradient in exact arithmetic (a softmax ignores a shift shared by every key): their
    # float noise, scaled up by Adam to a whole update's size, says nothing about the engine path.
    for name in (n for n in want if not n.endswith("k_proj.bias")):
        assert torch.allclose(want[name], got[name], atol=1e-5), (name, (want[name] - got[name]).abs().max())
    assert float(plain.loss_fn.tau) == pytest.approx(float(zero.loss_fn.tau), rel=1e-3)  # clipped τ: 1e-4 apart
