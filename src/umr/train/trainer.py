"""`TrainConfig` and `Trainer`: contrastive fine-tuning of any umr Embedder (full or LoRA, GradCache optional).

    trainer = Trainer(TrainConfig.from_yaml("src/umr/train/configs/tiny-gme-lora.yaml"))
    summary = trainer.fit()            # logs to console and OUTPUT_DIR/log.jsonl, checkpoints every N steps
    trainer.fit(resume=True)           # continue from the newest OUTPUT_DIR/checkpoint-*

Each step: one batch of (query, positive, k hard negatives) → embeddings → InfoNCE → AdamW. With
`micro_batch_size` the step runs through GradCache (same gradients, the memory of one micro-batch).
Under torchrun / accelerate launch every rank computes the exact full-batch loss (see train_step).
`tensorboard: true` also writes loss, τ, LR and samples/s to OUTPUT_DIR/tensorboard (umr.train.run_log).
`deepspeed: ds_zero2.json` (GPU, `pip install deepspeed`) wraps the model, τ, AdamW and schedule in a DeepSpeed
ZeRO-1/2 engine that shards optimizer states and gradients over the ranks; the step stays the same exact
InfoNCE step (umr.train.zero; example: configs/ds_zero2.json). Without CUDA or deepspeed it stops with
"DeepSpeed needs CUDA and `pip install deepspeed`".
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from tqdm.auto import tqdm

from umr.errors import UmrError
from umr.runtime.distributed import dist_info, init_process_group
from umr.train.checkpoints import finished_checkpoints, remove_partial_checkpoints
from umr.train.config_fields import check_fields
from umr.train.data import BATCH_BY, Pair, epoch_batches, read_mbeir_pairs, read_mbeir_root_pairs, read_pairs
from umr.train.gradcache import full_batch_loss, gradcache_backward
from umr.train.lora import (
    LoraSpec,
    apply_lora,
    freeze_matching,
    merge_into_embedder,
    save_adapter,
    set_vision_trainable,
)
from umr.train.losses import InfoNCELoss, rank_slice, reduce_gradients
from umr.train.run_log import RunLog


@dataclass
class TrainConfig:
    model: str = "tiny:gme"  # start point: a folder, hub id, "tiny:<recipe>" or "text"
    recipe: str | None = None  # None = what the checkpoint declares
    data: str = ""  # pairs JSONL, an M-BEIR query file (with mbeir_pool), or an M-BEIR root (all train tasks)
    data_root: str | None = None  # relative image paths resolve here (default: the data file's folder)
    mbeir_pool: str | None = None  # M-BEIR pool holding the dids that `data`'s pos/neg lists name
    tasks: list[str] | None = None  # M-BEIR root: only these sets ("task1", "mscoco", "mscoco_task0"); None = all
    datasets: list[str] | None = None  # M-BEIR root: only these datasets ("mscoco"), and-ed with `tasks`
    # M-BEIR: None = each query's instruction drawn from the root's TSV; "" = no instruction (U-MARVEL's and
    # LamRA's text and caption stages train without one); any other text = that instruction for every query.
    instruction: str | None = None
    output_dir: str = "runs/train"  # checkpoints, log.jsonl, final/ (and adapter/ for LoRA)
    epochs: int = 1  # passes over the data (ignored once max_steps is reached)
    max_steps: int | None = None  # stop early: short smoke runs and tests
    batch_size: int = 32  # contrastive batch: more in-batch negatives per query
    micro_batch_size: int | None = None  # GradCache chunk; None = the whole batch in one forward
    num_negatives: int = 0  # hard negatives per query (topped up with random positives when missing)
    share_negatives: bool = True  # every query also sees the other queries' hard negatives
    lr: float = 1e-4  # AdamW learning rate of the model (LoRA wants ~1e-4, full FT of 7B ~1e-5)
    temperature_lr: float | None = None  # τ's own LR; None = lr (τ moves slowly at small LRs)
    weight_decay: float = 0.0  # AdamW decay on matrices only (not on τ, norms or biases)
    warmup_steps: int = 0  # linear warm-up avoids early large updates on pretrained weights
    schedule: str = "constant"  # "constant", "linear" or "cosine" decay after warm-up
    grad_clip: float | None = 1.0  # max global grad norm; contrastive losses spike when τ is small
    temperature: float = 0.05  # τ at start (U-MARVEL: 0.05)
    learn_temperature: bool = True  # U-MARVEL learns τ; fix it for ablations
    symmetric: bool = False  # add the candidate → query loss (image-caption stages)
    batch_by: str = "none"  # "task" / "query_modality": batches from one task / query modality (umr.train.data)
    lora: LoraSpec | None = None  # None = full fine-tuning
    train_vision: bool = False  # the reference recipes keep the vision tower and projector frozen
    frozen: list[str] | None = None  # regexes: parameters whose name matches one stay fixed (partial fine-tuning)
    save_every: int = 0  # checkpoint every N steps (0 = only at the end)
    keep_checkpoints: int = 2  # older checkpoint-* folders are deleted (disk)
    log_every: int = 10  # console / JSONL log period in steps
    merge_at_end: bool = True  # LoRA: also write the merged model to final/ (what load_embedder reads)
    seed: int = 0  # data order and initialisation; a resumed run replays the same order
    device: str | None = None  # None = cuda if available
    dtype: str | None = None  # None = bf16 on GPU, fp32 on CPU
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% more compute
    max_image_tokens: int | None = None  # training-time image cap (Qwen2-VL, 28-px tokens); final/ keeps the recipe's
    stages: list[dict[str, Any]] = field(default_factory=list)  # see umr.train.stages
    type: str = "contrastive"  # "contrastive" (InfoNCE) | "distill" (KL to teacher scores: umr.train.distill)
    distill_temperature: float | None = None  # distill: τ of both softmaxes (detached); None = `temperature`
    distill_hard_weight: float = 0.0  # distill: + λ·CE on the labelled positive (guards against a weak teacher)
    distill_in_batch: bool = False  # distill: that CE also against the other queries' lists (global contrast)
    mix_data: str | None = None  # another pairs JSONL mixed into `data` (continual text FT keeps multimodal data)
    mix_share: float = 0.0  # share of each epoch's pairs drawn from mix_data (umr.train.continual)
    mine: dict[str, Any] | None = None  # stages: mine negatives with the stage's start model first (stage_data)
    from_base: bool = False  # stages: train from the top-level `model`, not the chain's (MM-Embed's hard stage);
    #                          the chain's model still mines the stage's negatives
    teacher: dict[str, Any] | None = None  # distill stages: build the teacher lists first (stage_data)
    tensorboard: bool | str = False  # also log to TensorBoard: True = OUTPUT_DIR/tensorboard, or a folder
    deepspeed: str | dict[str, Any] | None = None  # GPU only: a ZeRO-1/2 JSON file or mapping (umr.train.zero)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise UmrError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        values = check_fields(cls, raw)  # numeric strings ("1e-4") become numbers; negative counts are refused
        if isinstance(values.get("lora"), dict):
            lora_known = {f.name for f in dataclasses.fields(LoraSpec)}
            bad = sorted(set(values["lora"]) - lora_known)
            if bad:
                raise UmrError(f"unknown lora option(s) {bad}; known: {sorted(lora_known)}")
            values["lora"] = LoraSpec(**check_fields(LoraSpec, values["lora"], "lora."))
        if values.get("type", "contrastive") not in ("contrastive", "distill", "reranker"):
            raise UmrError(f"type must be contrastive, distill or reranker, not {values['type']!r}")
        if isinstance(values.get("tasks"), str | int):
            values["tasks"] = [values["tasks"]]
        if values.get("tasks") is not None:
            values["tasks"] = [str(t) for t in values["tasks"]]
        if isinstance(values.get("datasets"), str):
            values["datasets"] = [values["datasets"]]
        if values.get("schedule", "constant") not in ("constant", "linear", "cosine"):
            raise UmrError(f"schedule must be constant, linear or cosine, not {values['schedule']!r}")
        if values.get("batch_by", "none") not in BATCH_BY:
            raise UmrError(f"batch_by must be one of {', '.join(BATCH_BY)}, not {values['batch_by']!r}")
        if isinstance(values.get("frozen"), str):
            values["frozen"] = [values["frozen"]]
        config = cls(**values)
        if config.deepspeed is not None:
            from umr.train.zero import resolve_ds_config

            resolve_ds_config(config)  # a bad DeepSpeed option fails when the config is read, not on the GPU
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise UmrError(f"{path}: a training config is a YAML mapping")
        return cls.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text


def load_config_pairs(config: TrainConfig) -> list[Pair]:
    if not config.data:
        raise UmrError("no training data: set `data` to a pairs JSONL (or an M-BEIR query file + mbeir_pool)")
    if Path(config.data).is_dir():  # an M-BEIR data root: every task (or `tasks`) of its train split
        pairs = read_mbeir_root_pairs(config.data, tasks=config.tasks, seed=config.seed, datasets=config.datasets)
        if config.instruction is not None:
            for pair in pairs:
                pair.query = pair.query.with_instruction(config.instruction or None)
    elif config.mbeir_pool:
        root = config.data_root or str(Path(config.data).parent)
        pairs = read_mbeir_pairs(config.data, config.mbeir_pool, root, config.instruction)
    else:
        pairs = read_pairs(config.data, config.data_root)
    if config.mix_data:
        from umr.train.continual import mix_pairs

        extra = (read_mbeir_root_pairs(config.mix_data, seed=config.seed) if Path(config.mix_data).is_dir()
                 else read_pairs(config.mix_data))
        pairs = mix_pairs(pairs, extra, config.mix_share, config.seed)
    return pairs


class Trainer:
    def __init__(self, config: TrainConfig, embedder: Any = None, pairs: list[Pair] | None = None) -> None:
        from umr.models.registry import load_embedder

        self.config = config
        if config.tensorboard:
            from umr.train.run_log import require_tensorboard

            require_tensorboard()  # fail before loading the model
        ds_config = None
        if config.deepspeed is not None:
            from umr.train.zero import prepare_deepspeed

            ds_config = prepare_deepspeed(config)  # this rank's GPU and an NCCL process group, reused below
        # Under torchrun each rank trains on its slice of every global batch (see train_step).
        self.dist = dist_info()
        init_process_group(self.dist)
        if self.dist.world_size > 1 and config.batch_size % self.dist.world_size:
            raise UmrError(f"batch_size {config.batch_size} must divide by the {self.dist.world_size} processes")
        torch.manual_seed(config.seed)
        self.embedder = embedder or load_embedder(config.model, recipe=config.recipe, device=config.device,
                                                  dtype=config.dtype)
        self.restore_images = None
        if config.max_image_tokens is not None:
            from umr.train.image_cap import cap_image_tokens

            self.restore_images = cap_image_tokens(self.embedder, config.max_image_tokens)
        self.pairs = pairs if pairs is not None else load_config_pairs(config)
        self.out = Path(config.output_dir)
        self.peft_model = None
        mllm = self.embedder.mllm_model()
        if mllm is None and config.lora is not None:
            raise UmrError(f"lora: LoRA applies to MLLM embedders, and {self.embedder.name} is not one; train it "
                           "whole, or keep parts fixed with `frozen` patterns")
        if mllm is not None:
            if config.lora is not None:
                self.peft_model = apply_lora(mllm, config.lora)
            set_vision_trainable(mllm, config.train_vision)
            if config.gradient_checkpointing:
                # Non-reentrant checkpointing works with frozen inputs (LoRA) and with GradCache's RNG replay.
                mllm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.modules = self.embedder.trainable_modules()
        if config.frozen:
            freeze_matching(self.modules, config.frozen)
        self.loss_fn = InfoNCELoss(config.temperature, learnable=config.learn_temperature,
                                   symmetric=config.symmetric, share_negatives=config.share_negatives)
        self.loss_fn.to(self.embedder.device)
        self.optimizer = torch.optim.AdamW(self._param_groups(), lr=config.lr)
        self.steps_per_epoch = len(self.pairs) // config.batch_size
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        if self.total_steps == 0:  # a run that trains nothing must not write an untrained final/ as if it had
            raise UmrError(f"{len(self.pairs)} training examples make no full batch of batch_size "
                           f"{config.batch_size}, so nothing would be trained; set batch_size ≤ {len(self.pairs)} "
                           f"(--set batch_size=…) or give more data")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.engine = None
        if ds_config is not None:
            from umr.train.zero import init_engine

            self.engine = init_engine(self, ds_config)

    # -- setup -----------------------------------------------------------------------------------------------
    def named_trainable(self) -> dict[str, nn.Parameter]:
        return {f"{key}.{n}": p for key, mod in self.modules.items() for n, p in mod.named_parameters()
                if p.requires_grad}

    def _param_groups(self) -> list[dict[str, Any]]:
        decay, no_decay = [], []
        for _, p in self.named_trainable().items():
            (decay if p.ndim >= 2 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": self.config.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if self.config.learn_temperature:
            groups.append({"params": list(self.loss_fn.parameters()), "weight_decay": 0.0,
                           "lr": self.config.temperature_lr or self.config.lr})
        return [g for g in groups if g["params"]]

    def _lr_factor(self, step: int) -> float:
        warm = self.config.warmup_steps
        if warm and step < warm:
            return (step + 1) / warm
        if self.config.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, self.total_steps - warm))
        if self.config.schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1 + math.cos(math.pi * progress))

    # -- training --------------------------------------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> list[Any]:
        """The batches of one epoch (a hook: the distillation trainer batches its own rows)."""
        cfg = self.config
        return epoch_batches(self.pairs, cfg.batch_size, cfg.num_negatives, cfg.seed, epoch, cfg.batch_by)

    def step_batch(self, batch: Any) -> float:
        """One optimiser step on one batch from `epoch_batches` (a hook, like it)."""
        return self.train_step(batch.queries, batch.positives, batch.negatives)

    def train_step(self, queries: list, positives: list, negatives: list, loss_fn: Any = None) -> float:
        """One optimiser step on one contrastive batch; returns the loss. loss_fn(q, p, negs) defaults to InfoNCE."""
        cfg = self.config
        distributed = self.dist.world_size > 1
        if distributed:
            if loss_fn is not None:
                raise NotImplementedError("distributed training supports the InfoNCE stages only (not distill yet)")
            queries, positives, negatives = (rank_slice(x, self.dist) for x in (queries, positives, negatives))
        loss_fn = loss_fn or self.loss_fn
        if self.engine is not None:
            from umr.train.zero import engine_step

            loss = full_batch_loss(self.embedder, loss_fn, queries, positives, negatives)
            engine_step(self, loss)
            self.step += 1
            return loss.item()
        self.optimizer.zero_grad(set_to_none=True)
        if cfg.micro_batch_size and cfg.micro_batch_size < len(queries):
            loss = gradcache_backward(self.embedder, loss_fn, queries, positives, negatives,
                                      micro_batch=cfg.micro_batch_size)
        else:
            loss = full_batch_loss(self.embedder, loss_fn, queries, positives, negatives)
            loss.backward()
        if distributed:
            reduce_gradients(self.named_trainable().values(), self.loss_fn.parameters())
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(list(self.named_trainable().values()), cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return loss.item()

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train to `total_steps`; returns a summary (steps, first/last loss, τ, samples/s, seconds)."""
        cfg = self.config
        main = self.dist.is_main  # only rank 0 writes files; every rank trains
        self.out.mkdir(parents=True, exist_ok=True)
        if main:
            cfg.to_yaml(self.out / "train_config.yaml")
        if resume and main:
            remove_partial_checkpoints(self.out)
        if resume and (ckpt := self.latest_checkpoint()) is not None:
            self.load_checkpoint(ckpt)
        for mod in self.modules.values():
            mod.train()
        first = last = None
        start, seen = time.perf_counter(), 0
        log = RunLog(self.out, cfg.tensorboard, main)
        bar = tqdm(total=self.total_steps, initial=self.step, desc="training", unit="step", disable=not main)
        try:
            while self.step < self.total_steps:
                epoch, offset = divmod(self.step, self.steps_per_epoch)
                batches = self.epoch_batches(epoch)
                for batch in batches[offset:]:
                    if self.step >= self.total_steps:
                        break
                    t0 = time.perf_counter()
                    last = self.step_batch(batch)
                    first = last if first is None else first
                    seen += len(batch.queries)
                    rate = len(batch.queries) / max(time.perf_counter() - t0, 1e-9)
                    record = {"step": self.step, "epoch": epoch, "loss": round(last, 5),
                              "tau": round(self.loss_fn.tau.item(), 5),
                              "lr": self.scheduler.get_last_lr()[0], "samples_per_s": round(rate, 2)}
                    bar.update(1)
                    bar.set_postfix(loss=f"{last:.4f}", tau=f"{record['tau']:.4f}")
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        log.write(record)
                    if cfg.save_every and self.step % cfg.save_every == 0:
                        self.save_checkpoint()
        finally:
            bar.close()
            log.close()
        for mod in self.modules.values():
            mod.eval()
        seconds = time.perf_counter() - start
        return {"steps": self.step, "first_loss": first, "last_loss": last, "tau": self.loss_fn.tau.item(),
                "samples_per_s": seen / max(seconds, 1e-9), "seconds": seconds}

    # -- checkpoints -----------------------------------------------------------------------------------------
    def latest_checkpoint(self) -> Path | None:
        found = finished_checkpoints(self.out)
        return found[-1] if found else None

    def save_checkpoint(self) -> Path:
        """Trainable weights, optimiser, schedule, τ and RNG state: everything `--resume` needs."""
        path = self.out / f"checkpoint-{self.step}"
        tmp = path.with_name(path.name + ".tmp")
        if self.engine is not None:  # every rank writes its shard of the optimizer states
            from umr.train.zero import save_engine

            save_engine(self, tmp)
        if not self.dist.is_main:
            return path
        tmp.mkdir(parents=True, exist_ok=True)
        state = {"step": self.step, "weights": {k: p.detach().cpu() for k, p in self.named_trainable().items()},
                 "loss": self.loss_fn.state_dict(), "rng": torch.get_rng_state()}
        if self.engine is None:
            state.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict())
        torch.save(state, tmp / "trainer_state.pt")
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)  # a crash mid-save never leaves a half checkpoint under the real name
        old = finished_checkpoints(self.out)
        for stale in old[:-max(1, self.config.keep_checkpoints)]:
            shutil.rmtree(stale, ignore_errors=True)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        file = Path(path) / "trainer_state.pt"
        try:
            state = torch.load(file, map_location="cpu", weights_only=False)
        except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # truncated or not a torch file
            raise UmrError(f"{file}: unreadable checkpoint ({str(exc).splitlines()[0][:80]}); delete {path} to "
                           "resume from the one before it, or start without --resume") from exc
        params = self.named_trainable()
        if set(state["weights"]) != set(params):
            raise UmrError(f"{path}: checkpoint weights do not match this config's trainable parameters "
                           "(was it made with another model or LoRA setting?)")
        with torch.no_grad():
            for name, value in state["weights"].items():
                params[name].copy_(value)
        self.loss_fn.load_state_dict(state["loss"])
        if self.engine is not None:
            from umr.train.zero import load_engine

            load_engine(self, Path(path))
        else:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        self.step = int(state["step"])

    def save_final(self) -> Path:
        """final/: a folder load_embedder reads (LoRA: merged, adapter kept in adapter/)."""
        final = self.out / "final"
        if self.restore_images is not None:  # the saved model keeps the recipe it was loaded with
            self.restore_images()
            self.restore_images = None
        if not self.dist.is_main:
            return final
        if self.peft_model is not None:
            pooler = getattr(self.embedder, "pooler", None)
            save_adapter(self.peft_model, self.out / "adapter", self.embedder.model_path,
                         self.embedder.recipe.name, pooler)
            if not self.config.merge_at_end:
                return self.out / "adapter"
            merge_into_embedder(self.embedder, self.peft_model)
            self.peft_model = None
        return self.embedder.save_pretrained(final)
