"""Pretraining the tiny judge `tiny:judge@64x2+pre` as a captioner: `umr pretrain-tiny judge@64x2`.

    pretrain_judge("runs/judge")        # rebuilds the shipped judge bit for bit (one torch thread, ~8 min)

Real re-rankers start from an MLLM that learned to caption before it learned to judge. The tiny analogue: the
64x2 tiny Qwen2-VL learns to caption the pretraining world's own image-caption pairs (`umr world --size small
--seed 1000`, train split; the captions of text → image queries and the texts of image → text positives), and
judges with the caption's likelihood (umr.rerank.likelihood; style "caption"). A share of the captions is shown
without its image, so the same model also learns P(text), the likelihood score's denominator.

Its start (docs/quality.md §9–§11, chosen on validation worlds 2 and 3):
- the LLM re-drawn at std 0.2: at the default 0.02 a judge reads an image as the average of its tokens (§9);
- the rotary base θ 10 instead of 1e6, so the 4x4 image's width turns by a readable angle per token (§9);
- the vision tower of `tiny:u-marvel@64x2+pre`, frozen: the judge sees what the pretrained embedder's tower sees.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

from umr.errors import UmrError
from umr.runtime.atomic import atomic_write_json

SPEC = "judge@64x2"
#: the judge's pretraining (validation worlds 2 and 3, docs/quality.md §11)
JUDGE: dict[str, Any] = {"start": "u-marvel@64x2", "vision_from": "u-marvel@64x2+pre", "init_std": 0.2,
                         "rope_theta": 10.0, "steps": 8000, "batch_size": 16, "lr": 1.0e-3, "warmup": 50,
                         "drop_image": 0.1, "tasks": ["task0", "task3"], "seed": 1000}


def reinit_llm(model: Any, std: float, seed: int = 1) -> None:
    """Re-draw every matrix outside the vision tower from N(0, std²) (a seeded generator: reproducible)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "visual" not in name and p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def set_rope_theta(model: Any, theta: float) -> None:
    """Re-base the LLM's rotary frequencies, config included (a saved judge loads with the new base)."""
    import torch

    for config in (model.config, getattr(model.config, "text_config", None)):
        if config is not None and hasattr(config, "rope_theta"):
            config.rope_theta = theta
    for name, buffer in model.named_buffers():
        if name.endswith("rotary_emb.inv_freq"):
            dim = 2 * buffer.numel()
            buffer.copy_(1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    for module in model.modules():
        if hasattr(module, "original_inv_freq"):
            module.original_inv_freq = module.inv_freq.clone()


def judge_start(settings: dict[str, Any] = JUDGE) -> Any:
    """The untrained judge: a Reranker in the caption style, LLM re-drawn and re-based, the embedder's tower."""
    from umr.rerank.prompted import Reranker

    rr = Reranker(f"tiny:{settings['start']}", device="cpu", dtype="fp32", style="caption")
    reinit_llm(rr.model, settings["init_std"])
    set_rope_theta(rr.model, settings["rope_theta"])
    load_vision_tower(rr.model, f"tiny:{settings['vision_from']}")
    return rr


def load_vision_tower(model: Any, source: str) -> None:
    """Load the vision tower of checkpoint `source` into `model`; the rest of `model` is kept."""
    from umr.rerank.prompted import Reranker

    tower = Reranker(source, device="cpu", dtype="fp32").model.state_dict()
    model.load_state_dict({k: v for k, v in tower.items() if "visual" in k}, strict=False)


def judge_optimiser(model: Any, lr: float, steps: int, warmup: int,
                    train_vision: bool = False) -> tuple[list[Any], Any, Any]:
    """The vision tower frozen unless `train_vision`; AdamW with linear warm-up times a cosine decay to 0 over
    `steps` (the schedule the shipped judge was trained with)."""
    import torch

    for name, p in model.named_parameters():
        p.requires_grad = train_vision or "visual" not in name
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / max(1, steps)))))
    return params, opt, sched


def caption_rows(world: Path, tasks: list[str]) -> list[tuple[Any, str]]:
    """(image side, text) of the world's train pairs that have one (umr.rerank.likelihood.caption_of)."""
    from umr.rerank.likelihood import caption_of
    from umr.train.data import read_mbeir_root_pairs

    rows = [cap for p in read_mbeir_root_pairs(world, "train", tasks=tasks)
            if (cap := caption_of(p.query, p.positive)) is not None]
    if not rows:
        raise UmrError(f"{world}: no image-caption pairs in the train split of {tasks}")
    return rows


def train_judge(rr: Any, rows: list[tuple[Any, str]], settings: dict[str, Any] = JUDGE,
                progress: bool = True) -> list[float]:
    """Captioning steps (AdamW, linear warm-up then cosine decay to 0; the tower frozen); the step losses."""
    from tqdm.auto import tqdm

    from umr.rerank.likelihood import caption_loss, drop_images

    params, opt, sched = judge_optimiser(rr.model, settings["lr"], settings["steps"], settings["warmup"])
    rng, losses = random.Random(settings["seed"]), []
    rr.model.train()
    for _ in tqdm(range(settings["steps"]), desc="judge captioning", disable=not progress):
        batch = drop_images(rng.sample(rows, settings["batch_size"]), rng, settings["drop_image"])
        losses.append(optimizer_step(caption_loss(rr, batch), params, opt, sched))
    rr.model.eval()
    return losses


def optimizer_step(loss: Any, params: list[Any], opt: Any, sched: Any) -> float:
    """Backward, clip the gradient norm to 1, step the optimiser and the schedule; the loss as a float."""
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    return float(loss.item())


def pretrain_judge(out: str | Path, final: str | Path | None = None, steps: int | None = None,
                   world: str | Path | None = None) -> Path:
    """Pretrain the judge into `final` (default OUT/final) with pretrain.json; one torch thread, so a CPU run
    is bit-reproducible. Minutes long and not resumable: a stopped run starts again."""
    import torch

    from umr.train.pretrain_tiny import pretraining_world, write_record

    out = Path(out)
    world = pretraining_world(out, world)
    settings = {**JUDGE, **({"steps": steps} if steps is not None else {})}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(settings["seed"])
        rr = judge_start(settings)
        losses = train_judge(rr, caption_rows(world, settings["tasks"]), settings)
    finally:
        torch.set_num_threads(threads)
    target = Path(final) if final else out / "final"
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    rr.save_pretrained(tmp)
    marker = tmp / "umr_reranker.json"  # names the judge, not the cache folder of the start it was drawn over
    atomic_write_json(marker, {**json.loads(marker.read_text()), "reranker": f"tiny:{SPEC}+pre"})
    write_record(tmp, SPEC, settings, round(losses[0], 6) if losses else None,
                 round(sum(losses[-100:]) / len(losses[-100:]), 6) if losses else None)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
