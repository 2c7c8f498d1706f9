"""Point-wise re-ranker training (U-MARVEL): (query, positive) → "Yes", (query, one random negative) → "No".
A captioning judge (style "caption", `tiny:judge@64x2+pre`) is trained by captioning instead: the next-token loss
of each positive pair's caption after its image side (umr.rerank.likelihood); pairs with no caption are left out.

    cfg = RerankTrainConfig(model="tiny:gme", data="runs/negatives-top100.jsonl", output_dir="runs/reranker")
    final = train_reranker(cfg)        # a folder `Reranker(final)` loads (LoRA merged)

Data: a mined pairs JSONL (`umr mine --top 100 --take 100`): each line's `negatives` are the retriever's top
candidates minus positives; every epoch each positive is paired with one negative drawn at random from them.
Loss: cross-entropy over the two answer logits [Yes, No] of the first generated token (target Yes for the
positive, No for the negative) — the same two-way softmax `Reranker.score` reads out.
LoRA on the LLM only, vision tower and projector frozen (as the embedder's training).

It keeps its own AdamW loop rather than `umr.train.trainer.Trainer`'s: the re-ranker is no Embedder, its step is
one point-wise CE (no τ, no InfoNCE), and its negative draws share one RNG with the data order — the Trainer's
per-epoch batches would change which negatives a seed draws, and so every trained re-ranker.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from umr.errors import UmrError
from umr.items import Item
from umr.rerank.likelihood import caption_loss, caption_of, drop_images
from umr.rerank.prompted import Reranker
from umr.train.data import read_pairs
from umr.train.lora import LoraSpec, apply_lora, set_vision_trainable


@dataclass
class RerankTrainConfig:
    model: str = "tiny:gme"  # any Qwen2-VL / LLaVA-NeXT MLLM (U-MARVEL starts from the instruct model)
    data: str = ""  # mined pairs JSONL whose negatives are the retriever's top-N
    output_dir: str = "runs/reranker"  # final/ (merged) and log.jsonl
    lora: LoraSpec | None = field(default_factory=lambda: LoraSpec(r=8, alpha=16, dropout=0.0))  # None = full FT
    lr: float = 1e-4  # LoRA learning rate
    epochs: int = 1  # passes over the positives
    max_steps: int | None = None  # stop early (smoke runs, tests)
    batch_size: int = 8  # (query, positive) pairs per step; each brings one negative, so 2× examples
    seed: int = 0  # negative draws and order
    # Prompt style (umr.rerank.styles: umr | lamra); None = the start model's default. The saved judge records
    # it, so it is scored with the prompt it was trained on.
    style: str | None = None
    # A captioning judge (style "caption"): the share of its captions shown without their image, so that it keeps
    # learning P(text), its score's denominator (umr.train.caption_judge pretrains it with the same share).
    drop_image: float = 0.1
    device: str | None = None
    dtype: str | None = None


def pointwise_examples(pairs: list[Any], rng: random.Random) -> list[tuple[Item, Item, int]]:
    """(query, candidate, label) with label 0 = Yes (positive) / 1 = No; one random negative per positive."""
    out = []
    for p in pairs:
        out.append((p.query, p.positive, 0))
        if p.negatives:
            out.append((p.query, rng.choice(p.negatives), 1))
    return out


def pointwise_loss(yes_no_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over [Yes, No].

    Inputs:

    | argument        | shape  | meaning                                              |
    |-----------------|--------|------------------------------------------------------|
    | `yes_no_logits` | [b, 2] | logits of the first answer token's Yes and No tokens |
    | `labels`        | [b]    | 0 = relevant (target Yes), 1 = not relevant (No)     |
    """
    return F.cross_entropy(yes_no_logits.float(), labels)


def train_reranker(cfg: RerankTrainConfig) -> Path:
    """Train and save; returns the final folder."""
    if not cfg.data:
        raise UmrError("no training data: set `data` to a mined pairs JSONL (umr mine --take 100)")
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    pairs = read_pairs(cfg.data)
    rr = Reranker(cfg.model, device=cfg.device, dtype=cfg.dtype, style=cfg.style)
    captions = rr.style.scoring == "caption-pmi"
    if captions:  # a captioning judge goes on captioning: the positives' captions, negatives unused
        pairs = [p for p in pairs if caption_of(p.query, p.positive) is not None]
    elif not any(p.negatives for p in pairs):
        raise UmrError(f"{cfg.data}: no line has negatives; mine them first (umr mine --top 100 --take 100)")
    if len(pairs) < cfg.batch_size:  # no full batch: 0 steps would write an untrained re-ranker
        raise UmrError(f"{cfg.data}: {len(pairs)} mined queries make no full batch of batch_size {cfg.batch_size}; "
                       f"set batch_size ≤ {len(pairs)} or mine more queries")
    peft_model = apply_lora(rr.model, cfg.lora) if cfg.lora is not None else None
    set_vision_trainable(rr.model, False)
    params = [p for p in rr.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    step, losses = 0, []
    rr.model.train()
    with (out / "log.jsonl").open("w", encoding="utf-8") as log:
        for epoch in range(cfg.epochs):
            order = list(range(len(pairs)))
            rng.shuffle(order)
            for start in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
                if cfg.max_steps is not None and step >= cfg.max_steps:
                    break
                chosen = [pairs[i] for i in order[start:start + cfg.batch_size]]
                if captions:
                    rows = [caption_of(p.query, p.positive) for p in chosen]  # all captions: filtered above
                    loss = caption_loss(rr, drop_images(rows, rng, cfg.drop_image))
                else:
                    examples = pointwise_examples(chosen, rng)
                    batch = rr.prepare([(q, c) for q, c, _ in examples])
                    labels = torch.tensor([y for _, _, y in examples], device=rr.device)
                    loss = pointwise_loss(rr.yes_no_logits(batch), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                step += 1
                losses.append(loss.item())
                log.write(json.dumps({"step": step, "epoch": epoch, "loss": round(losses[-1], 5)}) + "\n")
    rr.model.eval()
    if peft_model is not None:
        rr.backbone.model = peft_model.merge_and_unload()  # a plain model: Reranker(final) needs no peft
    final = rr.save_pretrained(out / "final")
    summary = {"steps": step, "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
               "config": asdict(cfg)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return final
