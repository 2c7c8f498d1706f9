"""DeepSpeed ZeRO (stage 1 or 2) for `Trainer` on GPUs: optimizer states (1) and gradients (2) sharded over ranks.

    # train_config.yaml
    deepspeed: src/umr/train/configs/ds_zero2.json      # or an inline mapping

    umr train --config train_config.yaml                                      # one GPU, no launcher needed
    torchrun --nproc_per_node 8 "$(command -v umr)" train --config train_config.yaml   # or accelerate launch,
    deepspeed --no_local_rank "$(command -v umr)" train --config train_config.yaml     # or deepspeed's launcher

umr keeps what makes its step exact: the AdamW and LR schedule of the TrainConfig (the DeepSpeed config must not
declare `optimizer` / `scheduler`), the full-batch InfoNCE on every rank with only the local shard differentiable,
and a sum of the model gradients over ranks (DeepSpeed averages them, so the loss is scaled by the world size and
τ's gradient, which every rank computes in full, is divided back). `"auto"` values are filled from the
TrainConfig: train_batch_size = batch_size, train_micro_batch_size_per_gpu = batch_size / ranks,
gradient_accumulation_steps = 1, gradient_clipping = grad_clip (its norm also counts τ; the plain step clips the
model only), bf16 = (dtype is bf16).
Not supported with DeepSpeed: ZeRO-3 (it partitions the weights that the embedder's forward reads directly),
GradCache (`micro_batch_size`: its several backward passes per step bypass the engine) and distill stages.
Checkpoints go through the engine (sharded optimizer states) next to umr's own step / RNG state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from umr.errors import UmrError
from umr.runtime.distributed import dist_info

NEEDS = "DeepSpeed needs CUDA and `pip install deepspeed` (a GPU build of torch)"


def load_ds_config(spec: str | Path | dict[str, Any]) -> dict[str, Any]:
    """The DeepSpeed config as a dict: a mapping as it is, or a JSON file."""
    if isinstance(spec, dict):
        return dict(spec)
    path = Path(spec)
    if not path.is_file():
        raise UmrError(f"deepspeed: config file {path} not found (give a JSON file or a mapping)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UmrError(f"deepspeed: {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise UmrError(f"deepspeed: {path} must hold a JSON object")
    return raw


def _fill(ds: dict[str, Any], key: str, want: Any, why: str) -> None:
    value = ds.get(key, "auto")
    if value == "auto":
        ds[key] = want
    elif value != want:
        raise UmrError(f"deepspeed: {key}={value!r} but umr needs {want!r} ({why}); set it to \"auto\"")


def resolve_ds_config(config: Any, world_size: int = 1) -> dict[str, Any]:
    """Check a TrainConfig's `deepspeed` option against the rest of it and fill the "auto" values."""
    ds = load_ds_config(config.run.deepspeed)
    stage = (ds.get("zero_optimization") or {}).get("stage", 0)
    if stage not in (0, 1, 2):
        raise UmrError(f"deepspeed: ZeRO stage {stage!r} is not supported; use 1 or 2 (ZeRO-3 partitions the "
                       "weights the embedder's forward reads directly)")
    for section in ("optimizer", "scheduler"):
        if section in ds:
            raise UmrError(f"deepspeed: remove the `{section}` section; umr builds AdamW and the LR schedule "
                           "from the training config (lr, weight_decay, warmup_steps, schedule)")
    if config.optim.micro_batch_size:
        raise UmrError("deepspeed: GradCache (micro_batch_size) is not supported with DeepSpeed; drop "
                       "micro_batch_size or use gradient_checkpointing to save memory")
    from umr.train.trainer import Trainer

    if config.type != Trainer.trains:  # the engine wraps the InfoNCE Trainer's step (not DistillTrainer's)
        raise UmrError(f"deepspeed: only {Trainer.trains} stages run under DeepSpeed, not type {config.type!r}")
    if config.optim.batch_size % world_size:
        raise UmrError(f"deepspeed: batch_size {config.optim.batch_size} must divide by the {world_size} processes")
    _fill(ds, "train_batch_size", config.optim.batch_size, "the contrastive batch is batch_size")
    _fill(ds, "train_micro_batch_size_per_gpu", config.optim.batch_size // world_size, "each rank holds its slice")
    _fill(ds, "gradient_accumulation_steps", 1, "every step is one full contrastive batch")
    _fill(ds, "gradient_clipping", float(config.optim.grad_clip or 0.0), "grad_clip")
    for precision in ("bf16", "fp16"):
        section = ds.get(precision)
        if isinstance(section, dict) and section.get("enabled") == "auto":
            section["enabled"] = precision == "bf16" and config.model.dtype in (None, "bf16")
    ds["zero_allow_untested_optimizer"] = True  # the client AdamW (torch's) is what umr's resume tests cover
    return ds


def require_deepspeed() -> Any:
    """The deepspeed module, or a RuntimeError saying what is missing."""
    import torch

    try:
        import deepspeed
    except ImportError as exc:
        raise RuntimeError(f"{NEEDS}: the deepspeed package is not installed") from exc
    if not torch.cuda.is_available():
        raise RuntimeError(f"{NEEDS}: no CUDA device is visible")
    return deepspeed


def prepare_deepspeed(config: Any) -> dict[str, Any]:
    """Before the model loads: this rank's GPU as the current device, an NCCL process group (a single process
    needs no launcher: the rendezvous variables default to one local rank) and the resolved DeepSpeed config."""
    import os

    import torch

    deepspeed = require_deepspeed()
    for key, default in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                         ("MASTER_PORT", "29500")):
        os.environ.setdefault(key, default)  # else deepspeed falls back to MPI discovery
    info = dist_info()
    torch.cuda.set_device(info.local_rank % torch.cuda.device_count())  # "cuda" now means this rank's GPU
    deepspeed.init_distributed()
    return resolve_ds_config(config, info.world_size)


def init_engine(trainer: Any, ds: dict[str, Any]) -> Any:
    """Wrap the trainer's modules, τ, optimizer and schedule in a DeepSpeed engine (call after they exist)."""
    from torch import nn

    deepspeed = require_deepspeed()
    world = trainer.dist.world_size
    container = nn.ModuleDict({**trainer.modules, "loss": trainer.loss_fn})
    if world > 1:
        # DeepSpeed averages gradients over ranks; every rank's τ gradient is already the full one.
        for p in trainer.loss_fn.parameters():
            p.register_hook(lambda g: g / world)
    engine, optimizer, _, scheduler = deepspeed.initialize(model=container, optimizer=trainer.optimizer,
                                                           lr_scheduler=trainer.scheduler, config=ds)
    trainer.optimizer, trainer.scheduler = optimizer, scheduler
    return engine


def engine_step(trainer: Any, loss: Any) -> None:
    """Backward (scaled by the world size: DeepSpeed averages, the exact InfoNCE gradient is a sum) and step."""
    trainer.engine.backward(loss * trainer.dist.world_size)
    trainer.engine.step()  # clips, steps AdamW and the schedule, zeroes the gradients


def save_engine(trainer: Any, path: Path) -> None:
    """Every rank writes its optimizer-state shard (a collective call), then all wait for the slowest."""
    from umr.runtime.distributed import barrier

    trainer.engine.save_checkpoint(str(path), tag="deepspeed")
    barrier()


def load_engine(trainer: Any, path: Path) -> None:
    trainer.engine.load_checkpoint(str(path), tag="deepspeed")
