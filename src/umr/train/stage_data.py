"""What a stage builds from the model the previous stage left, before it trains (U-MARVEL's later stages).

Options of a stage (see umr.train.stages), all reading `data` as an M-BEIR root (its train split, `tasks`):

    mine:    {top: 50, take: 2, fn_ratio: 0.95, modality_aware: false, pool: local, max_per_set: null}
             → OUTPUT_DIR/negatives.jsonl, mined with the stage's start model; the stage trains on it with
               `num_negatives` = take unless the stage sets it (hard-negative stage).
    type: reranker (with `mine`)
             → a point-wise re-ranker trained from the stage's start model on the mined lists (umr.train.reranker);
               the chain's model does not change, later stages name the stage in `teacher.reranker`.
    teacher: {top: 10, weight: 1.0, reranker: <stage name | folder | null>, pool: local, max_per_set: 50,
              require_better: false}
             → OUTPUT_DIR/teacher.jsonl (fused cos + w·P(Yes) over each query's top-N) for a `type: distill` stage.
               require_better: the stage trains only if the teacher's top-1 beats the chain's own cosine on those
               lists significantly (McNemar, p <= 0.05: umr.train.distill.teacher_verdict); otherwise it is
               skipped, the chain's model unchanged, and OUTPUT_DIR/teacher_verdict.json says why.

Every file is resumable (mine / build_teacher skip finished queries), so a rerun of a chain picks up mid-stage.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from umr.errors import UmrError
from umr.mine.negatives import MineOptions

log = logging.getLogger(__name__)

#: options of `mine:` that are not MineOptions fields
_MINE_EXTRA = {"pool": "local", "max_per_set": None, "batch_size": 16}
_TEACHER_KEYS = {"top": 10, "weight": 1.0, "reranker": None, "pool": "local", "max_per_set": 50, "batch_size": 16,
                 "require_better": False, "scale": 1.0}


def _root(stage: Any, option: str) -> Path:
    root = Path(stage.data.data)
    if not root.is_dir():
        raise UmrError(f"stage {stage.run.output_dir}: `{option}` needs `data` to be an M-BEIR root folder, "
                       f"got {stage.data.data!r}")
    return root


def chain_cache(stage: Any) -> Path:
    """One embedding cache for the whole chain: a re-ranker stage and the teacher after it embed the train pools
    with the same model, and the cache (keyed by model and file) then embeds them once."""
    return Path(stage.run.output_dir).parent / "embedding-cache"


def check_stage_options(stage: Any) -> None:
    """Fail before any training when a stage's mine / teacher options are unknown or inconsistent."""
    where = f"stage {stage.run.output_dir}"
    if stage.chain.mine is not None and stage.chain.teacher is not None:
        raise UmrError(f"{where}: `mine` and `teacher` each build the stage's data (hard-negative pairs or "
                       "distillation lists); a stage takes one: mine in one stage, distil in a later one")
    if stage.chain.mine is not None:
        known = {f.name for f in dataclasses.fields(MineOptions)} | set(_MINE_EXTRA)
        bad = sorted(set(stage.chain.mine) - known)
        if bad:
            raise UmrError(f"{where}: unknown mine option(s) {bad}; known: {sorted(known)}")
    if stage.chain.teacher is not None:
        bad = sorted(set(stage.chain.teacher) - set(_TEACHER_KEYS))
        if bad:
            raise UmrError(f"{where}: unknown teacher option(s) {bad}; known: {sorted(_TEACHER_KEYS)}")
        if stage.type != "distill":
            raise UmrError(f"{where}: `teacher` belongs to a `type: distill` stage")
    if stage.type == "reranker" and stage.chain.mine is None:
        raise UmrError(f"{where}: a reranker stage learns from mined lists; add `mine: {{top: 20, take: 19}}`")
    if stage.type == "distill" and stage.chain.teacher is None and Path(stage.data.data).is_dir():
        raise UmrError(f"{where}: a distill stage on an M-BEIR root needs `teacher:` options")
    if stage.type == "distill":
        from umr.train.distill import check_distill_config

        check_distill_config(stage, where)


def mine_stage_negatives(stage: Any, embedder: Any) -> Path:
    """Mine `stage.chain.mine` negatives with `embedder`; returns the pairs JSONL."""
    from umr.mine.job import mine

    opts = {**_MINE_EXTRA, **stage.chain.mine}
    extra = {k: opts.pop(k) for k in _MINE_EXTRA}
    out = Path(stage.run.output_dir) / "negatives.jsonl"
    summary = mine(embedder, _root(stage, "mine"), out, pool=extra["pool"], tasks=stage.data.tasks,
                   opts=MineOptions(**opts), cache_dir=chain_cache(stage),
                   batch_size=extra["batch_size"], max_per_set=extra["max_per_set"])
    log.info("stage %s: mined %d rows (%d resumed), false negatives dropped %d, wrong-modality share %.2f",
             stage.run.output_dir, summary.written, summary.resumed, summary.fn_dropped,
             summary.wrong_modality_share)
    return out


def build_stage_teacher(stage: Any, embedder: Any, rerankers: dict[str, Path]) -> Path:
    """The distillation lists of `stage.chain.teacher`; `rerankers` maps earlier reranker stages' names to
    folders."""
    from umr.train.distill import build_teacher

    opts = {**_TEACHER_KEYS, **stage.chain.teacher}
    reranker = None
    if opts["reranker"] is not None:
        from umr.rerank.prompted import Reranker

        path = rerankers.get(str(opts["reranker"]), opts["reranker"])
        reranker = Reranker(path, device=stage.model.device, dtype=stage.model.dtype)
    out = Path(stage.run.output_dir) / "teacher.jsonl"
    summary = build_teacher(embedder, _root(stage, "teacher"), out, reranker=reranker, weight=opts["weight"],
                            top=opts["top"], pool=opts["pool"], tasks=stage.data.tasks,
                            cache_dir=chain_cache(stage), batch_size=opts["batch_size"],
                            max_per_set=opts["max_per_set"], scale=float(opts["scale"]))
    log.info("stage %s: teacher lists %d written, %d resumed", stage.run.output_dir, summary["written"],
             summary["resumed"])
    return out


def train_stage_reranker(stage: Any, negatives: Path) -> Path:
    """A point-wise re-ranker from the stage's start model; returns its final folder."""
    from umr.train.reranker import RerankTrainConfig, train_reranker

    spec, optim = stage.model, stage.optim
    cfg = RerankTrainConfig(model=spec.model, data=str(negatives), output_dir=stage.run.output_dir, lora=spec.lora,
                            lr=optim.lr, epochs=optim.epochs, max_steps=optim.max_steps, batch_size=optim.batch_size,
                            seed=optim.seed, device=spec.device, dtype=spec.dtype)
    return train_reranker(cfg)


def prepare_stage(stage: Any, embedder: Any, rerankers: dict[str, Path]) -> Any:
    """The stage with `data` pointing at what it built (mined pairs or teacher lists), ready for make_trainer."""
    if stage.chain.mine is not None and stage.type != "reranker":
        stage.data.data = str(mine_stage_negatives(stage, embedder))
        if stage.data.num_negatives == 0:
            stage.data.num_negatives = int(stage.chain.mine.get("take", MineOptions.take))
    elif stage.chain.teacher is not None:
        stage.data.data = str(build_stage_teacher(stage, embedder, rerankers))
    else:
        return stage
    stage.data.tasks, stage.chain.mine, stage.chain.teacher = None, None, None
    return stage
