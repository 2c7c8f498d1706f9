"""`Trainer`: contrastive fine-tuning of any umr Embedder (full or LoRA, GradCache optional).

    trainer = Trainer(TrainConfig.from_yaml("src/umr/train/configs/tiny-gme-lora.yaml"))   # umr.train.config
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
A Trainer trains the configs of its own `type` (`Trainer.trains`); umr.train.stages.make_trainer picks the class.
"""

from __future__ import annotations

import math
import pickle
import shutil
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

from umr.errors import UmrError
from umr.runtime.distributed import dist_info, init_process_group
from umr.train.checkpoints import finished_checkpoints, remove_partial_checkpoints
from umr.train.config import TrainConfig, TrainType
from umr.train.data import Pair, epoch_batches, read_mbeir_pairs, read_mbeir_root_pairs, read_pairs
from umr.train.gradcache import full_batch_loss, gradcache_backward
from umr.train.lora import apply_lora, freeze_matching, merge_into_embedder, save_adapter, set_vision_trainable
from umr.train.losses import InfoNCELoss, rank_slice, reduce_gradients
from umr.train.run_log import RunLog


def load_config_pairs(config: TrainConfig) -> list[Pair]:
    if not config.data.data:
        raise UmrError("no training data: set `data` to a pairs JSONL (or an M-BEIR query file + mbeir_pool)")
    if Path(config.data.data).is_dir():  # an M-BEIR data root: every task (or `tasks`) of its train split
        pairs = read_mbeir_root_pairs(config.data.data, tasks=config.data.tasks, seed=config.optim.seed,
                                      datasets=config.data.datasets)
        if config.data.instruction is not None:
            for pair in pairs:
                pair.query = pair.query.with_instruction(config.data.instruction or None)
    elif config.data.mbeir_pool:
        root = config.data.data_root or str(Path(config.data.data).parent)
        pairs = read_mbeir_pairs(config.data.data, config.data.mbeir_pool, root, config.data.instruction)
    else:
        pairs = read_pairs(config.data.data, config.data.data_root)
    if config.data.mix_data:
        from umr.train.continual import mix_pairs

        mix = config.data.mix_data
        extra = read_mbeir_root_pairs(mix, seed=config.optim.seed) if Path(mix).is_dir() else read_pairs(mix)
        pairs = mix_pairs(pairs, extra, config.data.mix_share, config.optim.seed)
    return pairs


class Trainer:
    #: the config `type` this class trains (make_trainer's dispatch reads it; another type is refused)
    trains: ClassVar[TrainType] = "contrastive"

    def __init__(self, config: TrainConfig, embedder: Any = None, pairs: list[Pair] | None = None) -> None:
        from umr.models.registry import load_embedder

        self.check_type(config)
        self.config = config
        if config.run.tensorboard:
            from umr.train.run_log import require_tensorboard

            require_tensorboard()  # fail before loading the model
        ds_config = None
        if config.run.deepspeed is not None:
            from umr.train.zero import prepare_deepspeed

            ds_config = prepare_deepspeed(config)  # this rank's GPU and an NCCL process group, reused below
        # Under torchrun each rank trains on its slice of every global batch (see train_step).
        self.dist = dist_info()
        init_process_group(self.dist)
        optim, spec = config.optim, config.model
        if self.dist.world_size > 1 and optim.batch_size % self.dist.world_size:
            raise UmrError(f"batch_size {optim.batch_size} must divide by the {self.dist.world_size} processes")
        torch.manual_seed(optim.seed)
        self.embedder = embedder or load_embedder(spec.model, recipe=spec.recipe, device=spec.device, dtype=spec.dtype)
        self.restore_images = None
        if config.model.max_image_tokens is not None:
            from umr.train.image_cap import cap_image_tokens

            self.restore_images = cap_image_tokens(self.embedder, config.model.max_image_tokens)
        self.pairs = pairs if pairs is not None else load_config_pairs(config)
        self.out = Path(config.run.output_dir)
        self.peft_model = None
        mllm = self.embedder.mllm_model()
        if mllm is None and config.model.lora is not None:
            raise UmrError(f"lora: LoRA applies to MLLM embedders, and {self.embedder.name} is not one; train it "
                           "whole, or keep parts fixed with `frozen` patterns")
        if mllm is not None:
            if config.model.lora is not None:
                self.peft_model = apply_lora(mllm, config.model.lora)
            set_vision_trainable(mllm, config.model.train_vision)
            if config.model.gradient_checkpointing:
                # Non-reentrant checkpointing works with frozen inputs (LoRA) and with GradCache's RNG replay.
                mllm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.modules = self.embedder.trainable_modules()
        if config.model.frozen:
            freeze_matching(self.modules, config.model.frozen)
        self.loss_fn = InfoNCELoss(config.loss.temperature, learnable=config.loss.learn_temperature,
                                   symmetric=config.loss.symmetric, share_negatives=config.data.share_negatives,
                                   hard_weight=config.loss.hard_negative_weight)
        self.loss_fn.to(self.embedder.device)
        self.optimizer = torch.optim.AdamW(self._param_groups(), lr=optim.lr)
        self.steps_per_epoch = len(self.pairs) // optim.batch_size
        self.total_steps = self.steps_per_epoch * optim.epochs
        if optim.max_steps is not None:
            self.total_steps = min(self.total_steps, optim.max_steps)
        if self.total_steps == 0:  # a run that trains nothing must not write an untrained final/ as if it had
            raise UmrError(f"{len(self.pairs)} training examples make no full batch of batch_size "
                           f"{optim.batch_size}, so nothing would be trained; set batch_size ≤ {len(self.pairs)} "
                           f"(--set batch_size=…) or give more data")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.engine = None
        if ds_config is not None:
            from umr.train.zero import init_engine

            self.engine = init_engine(self, ds_config)

    # -- setup -----------------------------------------------------------------------------------------------
    @classmethod
    def check_type(cls, config: TrainConfig) -> None:
        """Refuse a config of another `type` (a distill config given to the InfoNCE Trainer would train InfoNCE)."""
        if config.type != cls.trains:
            raise UmrError(f"{cls.__name__} trains `type: {cls.trains}` configs, not `type: {config.type}`; "
                           "umr.train.stages.make_trainer picks the trainer of a config's type")

    def named_trainable(self) -> dict[str, nn.Parameter]:
        return {f"{key}.{n}": p for key, mod in self.modules.items() for n, p in mod.named_parameters()
                if p.requires_grad}

    def _param_groups(self) -> list[dict[str, Any]]:
        decay, no_decay = [], []
        for _, p in self.named_trainable().items():
            (decay if p.ndim >= 2 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": self.config.optim.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if self.config.loss.learn_temperature:
            groups.append({"params": list(self.loss_fn.parameters()), "weight_decay": 0.0,
                           "lr": self.config.optim.temperature_lr or self.config.optim.lr})
        return [g for g in groups if g["params"]]

    def _lr_factor(self, step: int) -> float:
        warm = self.config.optim.warmup_steps
        if warm and step < warm:
            return (step + 1) / warm
        if self.config.optim.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, self.total_steps - warm))
        if self.config.optim.schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1 + math.cos(math.pi * progress))

    # -- training --------------------------------------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> list[Any]:
        """The batches of one epoch (a hook: the distillation trainer batches its own rows)."""
        cfg = self.config
        return epoch_batches(self.pairs, cfg.optim.batch_size, cfg.data.num_negatives, cfg.optim.seed, epoch,
                             cfg.data.batch_by)

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
        if cfg.optim.micro_batch_size and cfg.optim.micro_batch_size < len(queries):
            loss = gradcache_backward(self.embedder, loss_fn, queries, positives, negatives,
                                      micro_batch=cfg.optim.micro_batch_size)
        else:
            loss = full_batch_loss(self.embedder, loss_fn, queries, positives, negatives)
            loss.backward()
        if distributed:
            reduce_gradients(self.named_trainable().values(), self.loss_fn.parameters())
        if cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(list(self.named_trainable().values()), cfg.optim.grad_clip)
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
        log = RunLog(self.out, cfg.run.tensorboard, main)
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
                    if self.step % cfg.run.log_every == 0 or self.step == self.total_steps:
                        log.write(record)
                    if cfg.run.save_every and self.step % cfg.run.save_every == 0:
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
        for stale in old[:-max(1, self.config.run.keep_checkpoints)]:
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
            if not self.config.run.merge_at_end:
                return self.out / "adapter"
            merge_into_embedder(self.embedder, self.peft_model)
            self.peft_model = None
        return self.embedder.save_pretrained(final)
