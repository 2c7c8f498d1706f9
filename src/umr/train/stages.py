"""Multi-stage training (U-MARVEL's progressive transition): each stage starts from the previous stage's merged
model. A stage is a mapping of TrainConfig fields that override the top-level ones, plus an optional `name`:

    model: tiny:gme
    lora: {r: 8, alpha: 16}
    stages:
      - {name: text, data: nli_pairs.jsonl, lr: 1.0e-4}
      - {name: caption, data: caption_pairs.jsonl, symmetric: true, lora: {r: 4, alpha: 8}}
      - {name: distill, type: distill, data: teacher_top50.jsonl}          # umr.train.distill
      - {name: text, data: text_pairs.jsonl, lr: 1.0e-5, mix_data: mm_pairs.jsonl, mix_share: 0.25}

Stage i writes OUTPUT_DIR/stage-{i}-{name}/ (its checkpoints, log and final/); a finished stage (final/ present)
is skipped on a rerun, so `--resume` continues a chain where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from umr.train.trainer import TrainConfig, Trainer


def stage_configs(config: TrainConfig) -> list[TrainConfig]:
    """One TrainConfig per stage (model left as-is: run_stages chains it); validates every stage up front."""
    base = config.to_dict()
    base.pop("stages")
    out = []
    for i, stage in enumerate(config.stages):
        if not isinstance(stage, dict):
            raise ValueError(f"stage {i} must be a mapping of training options, got {type(stage).__name__}")
        fields: dict[str, Any] = dict(stage)
        name = str(fields.pop("name", i))
        if "stages" in fields or "output_dir" in fields:
            raise ValueError(f"stage {name}: 'stages' and 'output_dir' are set once, at the top level")
        merged = {**base, **fields, "output_dir": str(Path(config.output_dir) / f"stage-{i}-{name}")}
        out.append(TrainConfig.from_dict(merged))
    return out


def make_trainer(config: TrainConfig) -> Trainer:
    """The trainer for a config's `type`: contrastive (InfoNCE) or distill (KL to teacher scores)."""
    if config.type == "distill":
        from umr.train.distill import DistillTrainer

        return DistillTrainer(config)
    return Trainer(config)


def run_stages(config: TrainConfig, resume: bool = False) -> Path:
    """Train every stage in order, merging each stage's LoRA into the base of the next; returns the last final/."""
    if not config.stages:
        raise ValueError("the config has no `stages`")
    model = config.model
    final = Path(config.output_dir)
    for stage in stage_configs(config):
        stage.model = model
        if stage.lora is not None:
            stage.merge_at_end = True  # the next stage needs a merged base
        final = Path(stage.output_dir) / "final"
        if resume and any((final / marker).is_file() for marker in ("umr_recipe.json", "modules.json")):
            print(f"stage {stage.output_dir}: already finished, skipped")
        else:
            trainer = make_trainer(stage)
            summary = trainer.fit(resume=resume)
            final = trainer.save_final()
            print(f"stage {stage.output_dir}: {summary['steps']} steps, loss {summary['first_loss']} → "
                  f"{summary['last_loss']}, {summary['samples_per_s']:.1f} samples/s")
        model = str(final)
    return final
