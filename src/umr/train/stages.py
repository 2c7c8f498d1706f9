"""Multi-stage training (U-MARVEL's progressive transition): each stage starts from the previous stage's merged
model. A stage is a mapping of (flat) TrainConfig keys that override the top-level ones, plus an optional `name`:

    model: tiny:gme
    lora: {r: 8, alpha: 16}
    stages:
      - {name: text, data: nli_pairs.jsonl, lr: 1.0e-4}
      - {name: caption, data: caption_pairs.jsonl, symmetric: true, lora: {r: 4, alpha: 8}}
      - {name: distill, type: distill, data: teacher_top50.jsonl}          # umr.train.distill
      - {name: text, data: text_pairs.jsonl, lr: 1.0e-5, mix_data: mm_pairs.jsonl, mix_share: 0.25}

With an M-BEIR root as `data`, a stage can also build its data from the model the chain has reached
(umr.train.stage_data): `mine:` (hard negatives), `type: reranker` (a re-ranker for a later teacher) and
`teacher:` (distillation lists), which is how U-MARVEL's progressive transition runs as one config
(configs/world-small-u-marvel.yaml). A re-ranker stage trains from the chain's model unless it names its own
`model:` (a pretrained judge, e.g. `tiny:judge@64x2+pre`); the chain's model still mines its data.

Stage i writes OUTPUT_DIR/stage-{i}-{name}/ (its checkpoints, log and final/); a finished stage (final/ present)
is skipped on a rerun, so `--resume` continues a chain where it stopped. A distill stage with
`teacher: {require_better: true}` records its teacher's verdict in teacher_verdict.json; when the teacher is no
better than the chain's model, it trains nothing and the chain's model stays as it was (`teacher_verdicts`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from umr.errors import UmrError, os_error_line
from umr.train.config import TrainConfig
from umr.train.distill import DistillTrainer
from umr.train.stage_data import check_stage_options, mine_stage_negatives, prepare_stage, train_stage_reranker
from umr.train.trainer import Trainer

log = logging.getLogger(__name__)


def stage_configs(config: TrainConfig) -> list[TrainConfig]:
    """One TrainConfig per stage (model left as-is: run_stages chains it); validates every stage up front."""
    base = config.to_dict()
    base.pop("stages")
    out = []
    for i, stage in enumerate(config.chain.stages):
        if not isinstance(stage, dict):
            raise UmrError(f"stage {i} must be a mapping of training options, got {type(stage).__name__}")
        fields: dict[str, Any] = dict(stage)
        name = str(fields.pop("name", i))
        if "stages" in fields or "output_dir" in fields:
            raise UmrError(f"stage {name}: 'stages' and 'output_dir' are set once, at the top level")
        merged = {**base, **fields, "output_dir": str(Path(config.run.output_dir) / f"stage-{i}-{name}")}
        stage_cfg = TrainConfig.from_dict(merged)
        check_stage_options(stage_cfg)
        out.append(stage_cfg)
    return out


def stage_name(stage: TrainConfig) -> str:
    """The `name` a stage was given (its folder is stage-{i}-{name})."""
    return Path(stage.run.output_dir).name.split("-", 2)[-1]


#: config `type` → the class that trains it (each declares its own in `trains`); `reranker` is run_stages' own
TRAINERS: dict[str, type[Trainer]] = {cls.trains: cls for cls in (Trainer, DistillTrainer)}


def make_trainer(config: TrainConfig, embedder: object = None) -> Trainer:
    """The trainer for a config's `type`: contrastive (InfoNCE) or distill (KL to teacher scores)."""
    if config.type not in TRAINERS:
        raise UmrError(f"a {config.type} stage trains a re-ranker, not an embedder: run it through run_stages")
    return TRAINERS[config.type](config, embedder=embedder)


VERDICT = "teacher_verdict.json"


def _verdict(stage_dir: str | Path) -> dict[str, Any] | None:
    path = Path(stage_dir) / VERDICT
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def teacher_verdicts(config: TrainConfig) -> dict[str, dict[str, Any]]:
    """Stage name → the teacher verdict a `require_better` distill stage recorded (its "skipped": whether it
    declined to train)."""
    found = {stage_name(s): _verdict(s.run.output_dir) for s in stage_configs(config)}
    return {name: v for name, v in found.items() if v is not None}


def _skip_weak_teacher(stage: TrainConfig) -> bool:
    """Record the teacher's verdict; True when the teacher is not better than the student (the stage skips)."""
    from umr.train.distill import teacher_file_verdict

    verdict = teacher_file_verdict(stage.data.data)
    verdict["skipped"] = not verdict["better"]
    (Path(stage.run.output_dir) / VERDICT).write_text(json.dumps(verdict, indent=1) + "\n", encoding="utf-8")
    if verdict["skipped"]:
        log.warning("stage %s skipped: its teacher is not better than the student on its own lists (top-1 %.1f vs "
                    "%.1f %%, McNemar p %.3f); the chain's model is unchanged", stage.run.output_dir,
                    verdict["teacher_r1"], verdict["student_r1"], verdict["p"])
    return bool(verdict["skipped"])


def _finished(final: Path) -> bool:
    return any((final / marker).is_file() for marker in ("umr_recipe.json", "modules.json", "umr_reranker.json"))


def run_stages(config: TrainConfig, resume: bool = False) -> Path:
    """Train every stage in order, merging each stage's LoRA into the base of the next; returns the last final/."""
    if not config.chain.stages:
        raise UmrError("the config has no `stages`")
    model = config.model.model
    final = Path(config.run.output_dir)
    rerankers: dict[str, Path] = {}
    own_model = [isinstance(s, dict) and "model" in s for s in config.chain.stages]
    for i, stage in enumerate(stage_configs(config)):
        if not (stage.type == "reranker" and own_model[i]):  # a re-ranker may start from a judge of its own
            stage.model.model = model
        try:
            out = _run_stage(stage, model, rerankers, resume, base=config.model.model)
        except (UmrError, OSError) as exc:  # which stage of a long chain failed is the first thing to know
            text = os_error_line(exc) if isinstance(exc, OSError) else str(exc)
            raise UmrError(f"stage {i} ({stage_name(stage)}): {text}") from exc
        if out is None:
            continue
        if stage.type == "reranker":
            rerankers[stage_name(stage)] = out  # the chain's model stays the embedder
            continue
        final = out
        model = str(final)
    return final


def _run_stage(stage: TrainConfig, model: str, rerankers: dict[str, Path], resume: bool, base: str) -> Path | None:
    """Train one stage (or find it finished); its final/ folder, or None when it was skipped (weak teacher).
    `model` is the chain's model so far, `base` the config's own (a `from_base` stage trains from it)."""
    from umr.models.registry import load_embedder

    if stage.model.lora is not None:
        stage.run.merge_at_end = True  # the next stage needs a merged base
    out = Path(stage.run.output_dir) / "final"
    if resume and (_verdict(stage.run.output_dir) or {}).get("skipped"):
        log.info("stage %s: skipped before (its teacher was not better), the chain's model unchanged",
                 stage.run.output_dir)
        return None
    if resume and _finished(out):
        log.info("stage %s: already finished, skipped", stage.run.output_dir)
        return out
    needs_model = stage.chain.mine is not None or stage.chain.teacher is not None
    spec = stage.model
    embedder = load_embedder(model, recipe=spec.recipe, device=spec.device, dtype=spec.dtype) if needs_model else None
    if stage.type == "reranker":
        out = train_stage_reranker(stage, mine_stage_negatives(stage, embedder))
        log.info("stage %s: re-ranker written to %s", stage.run.output_dir, out)
        return out
    require_better = bool((stage.chain.teacher or {}).get("require_better"))
    stage = prepare_stage(stage, embedder, rerankers)
    if require_better and _skip_weak_teacher(stage):
        return None
    if stage.chain.from_base:  # the chain's model mined the data; training restarts from the base model
        stage.model.model, embedder = base, None
    trainer = make_trainer(stage, embedder=embedder)
    summary = trainer.fit(resume=resume)
    log.info("stage %s: %s steps, loss %s → %s, %.1f samples/s", stage.run.output_dir, summary["steps"],
             summary["first_loss"], summary["last_loss"], summary["samples_per_s"])
    return trainer.save_final()
