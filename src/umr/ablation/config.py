"""Settings of one ablation run; every field is also a `umr ablate` option."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from umr.errors import UmrError


@dataclass
class AblationConfig:
    out: Path = Path("runs/ablate")  # everything goes here: world, mined files, stage folders, eval reports, table
    size: str = "tiny"  # world size (umr.data.world SIZES): tiny for tests, small for the reported table
    seed: int = 0  # world, data order and initialisation
    base: str | None = None  # a trained base folder or a `tiny:<spec>` (e.g. tiny:u-marvel@64x2+pre); None = train one
    base_steps: int = 60  # steps of the base stage: full fine-tuning (vision too) of the random tiny MLLM
    base_batch_size: int = 32  # world-small-gme.yaml's base stage: batch 32, lr 1e-3, symmetric, vision trained
    steps: int = 30  # steps of every ablation stage (each starts from the base, so they are comparable)
    batch_size: int = 16  # contrastive batch of the ablation stages
    lr: float = 1e-3  # full fine-tuning LR of the contrastive ablation stages (the base stage's LR)
    small_lr: float = 2e-4  # distillation and continual-text stages (a smaller LR on a trained model)
    negatives: int = 2  # mined negatives per query (appended as extra logit columns)
    top: int = 50  # retrieved list length the negatives are mined from
    fn_ratio: float = 0.95  # false-negative filter: drop candidates scoring above ratio × the positive (NV-Retriever)
    fn_skip: int = 0  # > 0: the FN arm skips the N best of the task's modality instead (a rank window)
    rerank: int = 10  # top-N re-ranked in (c) and distilled in (d)
    fuse_weight: float = 1.0  # fused score = cos + w · P(Yes)
    rerank_steps: int | None = None  # steps of the re-ranker's training; None = `steps`
    rerank_lr: float = 1e-3  # re-ranker LoRA LR (at 5e-4, 40 steps left the tiny re-ranker at P(Yes) ≈ ½)
    teacher_queries: int | None = 40  # distillation: teacher lists for the first N train queries of each set
    text_share: float = 0.25  # continual text FT: share of multimodal pairs mixed in (MM-Embed keeps some)
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if min(self.steps, self.base_steps, self.negatives, self.rerank) < 1:
            raise UmrError("steps, base_steps, negatives and rerank must be ≥ 1")
        if self.fn_skip < 0:
            raise UmrError("fn_skip must be ≥ 0")
        if self.base is not None and not self.base.startswith("tiny:") and not Path(self.base).is_dir():
            raise FileNotFoundError(f"{self.base}: no such base model folder (a training run's final/ or tiny:<spec>)")

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
