"""`TrainConfig`: what a training run does, in typed parts, read from and written to one flat mapping.

    config = TrainConfig.from_yaml("src/umr/train/configs/tiny-gme-lora.yaml")
    config.optim.lr, config.data.batch_by, config.model.lora, config.run.output_dir
    config = TrainConfig.of(model="tiny:gme", data="pairs.jsonl", batch_size=8)    # code and tests

The YAML, `umr train --set KEY=VALUE` and a stage's overrides stay one flat namespace (`lr: 1e-4`,
`batch_by: task`): a key names one field of one part, the way tevatron reads one command line into several
argument dataclasses. `from_dict` routes each key to its part and checks it (umr.train.config_fields: numbers,
ranges, `Literal` choices); `to_dict` writes the same flat mapping back (OUTPUT_DIR/train_config.yaml).
`type` picks the trainer (umr.train.stages.make_trainer).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from umr.errors import UmrError
from umr.train.config_fields import check_fields
from umr.train.data import BatchBy
from umr.train.lora import LoraSpec

TrainType = Literal["contrastive", "distill", "reranker"]


@dataclass
class ModelArgs:
    """The start model and which of its weights train."""

    model: str = "tiny:gme"  # start point: a folder, hub id, "tiny:<recipe>" or "text"
    recipe: str | None = None  # None = what the checkpoint declares
    device: str | None = None  # None = cuda if available
    dtype: str | None = None  # None = bf16 on GPU, fp32 on CPU
    lora: LoraSpec | None = None  # None = full fine-tuning
    train_vision: bool = False  # the reference recipes keep the vision tower and projector frozen
    frozen: list[str] | None = None  # regexes: parameters whose name matches one stay fixed (partial fine-tuning)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% more compute
    max_image_tokens: int | None = None  # training-time image cap (Qwen2-VL, 28-px tokens); final/ keeps the recipe's


@dataclass
class DataArgs:
    """What the batches are made of."""

    data: str = ""  # pairs JSONL, an M-BEIR query file (with mbeir_pool), or an M-BEIR root (all train tasks)
    data_root: str | None = None  # relative image paths resolve here (default: the data file's folder)
    mbeir_pool: str | None = None  # M-BEIR pool holding the dids that `data`'s pos/neg lists name
    tasks: list[str] | None = None  # M-BEIR root: only these sets ("task1", "mscoco", "mscoco_task0"); None = all
    datasets: list[str] | None = None  # M-BEIR root: only these datasets ("mscoco"), and-ed with `tasks`
    # M-BEIR: None = each query's instruction drawn from the root's TSV; "" = no instruction (U-MARVEL's and
    # LamRA's text and caption stages train without one); any other text = that instruction for every query.
    instruction: str | None = None
    mix_data: str | None = None  # another pairs JSONL mixed into `data` (continual text FT keeps multimodal data)
    mix_share: float = 0.0  # share of each epoch's pairs drawn from mix_data (umr.train.continual)
    batch_by: BatchBy = "none"  # "task" / "query_modality": batches from one task / query modality (umr.train.data)
    num_negatives: int = 0  # hard negatives per query (topped up with random positives when missing)
    share_negatives: bool = True  # every query also sees the other queries' hard negatives


@dataclass
class OptimArgs:
    """How long and how fast: steps, batch, AdamW and its schedule."""

    epochs: int = 1  # passes over the data (ignored once max_steps is reached)
    max_steps: int | None = None  # stop early: short smoke runs and tests
    batch_size: int = 32  # contrastive batch: more in-batch negatives per query
    micro_batch_size: int | None = None  # GradCache chunk; None = the whole batch in one forward
    lr: float = 1e-4  # AdamW learning rate of the model (LoRA wants ~1e-4, full FT of 7B ~1e-5)
    temperature_lr: float | None = None  # τ's own LR; None = lr (τ moves slowly at small LRs)
    weight_decay: float = 0.0  # AdamW decay on matrices only (not on τ, norms or biases)
    warmup_steps: int = 0  # linear warm-up avoids early large updates on pretrained weights
    schedule: Literal["constant", "linear", "cosine"] = "constant"  # decay after warm-up
    grad_clip: float | None = 1.0  # max global grad norm; contrastive losses spike when τ is small
    seed: int = 0  # data order and initialisation; a resumed run replays the same order


@dataclass
class LossArgs:
    """The InfoNCE loss and, for `type: distill`, the distillation loss (umr.train.distill)."""

    temperature: float = 0.05  # τ at start (U-MARVEL: 0.05)
    learn_temperature: bool = True  # U-MARVEL learns τ; fix it for ablations
    symmetric: bool = False  # add the candidate → query loss (image-caption stages)
    hard_negative_weight: float = 1.0  # each hard negative counts as this many negatives (< 1 softens mined ones)
    distill_temperature: float | None = None  # distill: τ of both softmaxes (detached); None = `temperature`
    distill_hard_weight: float = 0.0  # distill: + λ·CE on the labelled positive (guards against a weak teacher)
    distill_in_batch: bool = False  # distill: that CE also against the other queries' lists (global contrast)


@dataclass
class RunArgs:
    """Where the run writes, how often, and how it is launched."""

    output_dir: str = "runs/train"  # checkpoints, log.jsonl, final/ (and adapter/ for LoRA)
    save_every: int = 0  # checkpoint every N steps (0 = only at the end)
    keep_checkpoints: int = 2  # older checkpoint-* folders are deleted (disk)
    log_every: int = 10  # console / JSONL log period in steps
    merge_at_end: bool = True  # LoRA: also write the merged model to final/ (what load_embedder reads)
    tensorboard: bool | str = False  # also log to TensorBoard: True = OUTPUT_DIR/tensorboard, or a folder
    deepspeed: str | dict[str, Any] | None = None  # GPU only: a ZeRO-1/2 JSON file or mapping (umr.train.zero)


@dataclass
class ChainArgs:
    """A chain of stages (umr.train.stages) and what a stage builds before it trains (umr.train.stage_data)."""

    stages: list[dict[str, Any]] = field(default_factory=list)  # see umr.train.stages
    mine: dict[str, Any] | None = None  # stages: mine negatives with the stage's start model first (stage_data)
    from_base: bool = False  # stages: train from the top-level `model`, not the chain's (MM-Embed's hard stage);
    #                          the chain's model still mines the stage's negatives
    teacher: dict[str, Any] | None = None  # distill stages: build the teacher lists first (stage_data)


#: TrainConfig attribute → its part, in the order to_dict writes the keys
PARTS: dict[str, type] = {"model": ModelArgs, "data": DataArgs, "optim": OptimArgs, "loss": LossArgs,
                          "run": RunArgs, "chain": ChainArgs}
#: flat key → the part that holds it (a field name is unique across the parts)
KEY_PART: dict[str, str] = {f.name: part for part, cls in PARTS.items() for f in dataclasses.fields(cls)}


def _as_lists(values: dict[str, Any]) -> None:
    """One value where a list is meant (`tasks: task1`, `frozen: "^text"`) becomes a list of one."""
    if isinstance(values.get("tasks"), str | int):
        values["tasks"] = [values["tasks"]]
    if values.get("tasks") is not None:
        values["tasks"] = [str(t) for t in values["tasks"]]
    for key in ("datasets", "frozen"):
        if isinstance(values.get(key), str):
            values[key] = [values[key]]


def _lora(value: Any) -> Any:
    """`lora: {r: 8, alpha: 16}` as a checked LoraSpec (a LoraSpec or None as it is)."""
    if not isinstance(value, dict):
        return value
    known = {f.name for f in dataclasses.fields(LoraSpec)}
    bad = sorted(set(value) - known)
    if bad:
        raise UmrError(f"unknown lora option(s) {bad}; known: {sorted(known)}")
    return LoraSpec(**check_fields(LoraSpec, value, "lora."))


@dataclass
class TrainConfig:
    # "contrastive" (InfoNCE) | "distill" (KL to teacher scores: umr.train.distill) | "reranker" (a stage that
    # trains the re-ranker a later teacher uses: umr.train.stage_data)
    type: TrainType = "contrastive"
    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    optim: OptimArgs = field(default_factory=OptimArgs)
    loss: LossArgs = field(default_factory=LossArgs)
    run: RunArgs = field(default_factory=RunArgs)
    chain: ChainArgs = field(default_factory=ChainArgs)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        """The config of a flat mapping (YAML keys); a bad key or value stops with one line naming it."""
        known = {"type", *KEY_PART}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise UmrError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        values = dict(raw)
        _as_lists(values)
        if "lora" in values:
            values["lora"] = _lora(values["lora"])
        top = check_fields(cls, {k: v for k, v in values.items() if k == "type"})
        parts = {name: part(**check_fields(part, {k: v for k, v in values.items() if KEY_PART.get(k) == name}))
                 for name, part in PARTS.items()}
        config = cls(**top, **parts)
        if config.run.deepspeed is not None:
            from umr.train.zero import resolve_ds_config

            resolve_ds_config(config)  # a bad DeepSpeed option fails when the config is read, not on the GPU
        return config

    @classmethod
    def of(cls, **flat: Any) -> TrainConfig:
        """`from_dict` with keywords: TrainConfig.of(model="tiny:gme", lr=1e-3)."""
        return cls.from_dict(flat)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise UmrError(f"{path}: a training config is a YAML mapping")
        return cls.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        """The flat mapping `from_dict` reads back (lora as a mapping)."""
        flat: dict[str, Any] = {"type": self.type}
        for name in PARTS:
            flat.update(dataclasses.asdict(getattr(self, name)))
        return flat

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text
