"""Issue 10 probe: which settings let the tiny Qwen2-VL learn the offline world? One variant per run.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/mllm_probe.py VARIANT [STEPS] [OUT]

Trains one variant for STEPS (default 300) steps of 32 on `umr world --size small --seed 2` — a *validation*
world, so nothing is tuned on the demo's seed-0 world — and evaluates on that world's test split (local pools).
Prints one JSON line. One torch thread, so two probes share the 2 cores.

Measured 2026-11-23 (mean headline recall; "64x2" = tiny:u-marvel@64x2, LLM width 64 and 2+2 layers; "task" =
batch_by task; LR 1e-3 unless named):

| variant                                   | mean |   | variant                          | mean |
|-------------------------------------------|-----:|---|----------------------------------|-----:|
| u-marvel (128x4, mixed batches)           |  6.6 |   | clip-sf (mixed, LR 1e-3)         | 13.3 |
| u-marvel, no chat template                |  6.8 |   | clip-sf LR 3e-4 / 1e-4 / 3e-3    | 13.3 / 8.9 / 9.3 |
| 64x2                                      |  8.0 |   | clip-sf, task batches            | 35.3 |
| 128x4, task                               |  9.5 |   | text (MiniLM fine-tuned, LR 1e-4)| 17.8 |
| 64x2, task                                | 11.0 |   | 64x2 mixed, LR 1e-4 (plain)      | 13.3 |
| 64x2, task, LR 3e-3 / 3e-4 / 1e-4 / 3e-5  | 6.5 / 12.9 / 20.2 / 15.8 | | 64x2, task, last token, LR 3e-4 | 15.1 |
| 64x2, task, LR 1e-4, symmetric            | 22.8 |   |                                  |      |

The staged chain of the demo plan on the same world (64x2, task, LR 1e-4, symmetric): instruct 20.7 → hard
negatives 22.9 → distillation 15.3 with the list-only loss, 21.9 with `distill_in_batch` (the plan's setting).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from umr.data.world import build_world
from umr.demo.pipeline import evaluate_model, train_baseline
from umr.models.recipe import recipe_for_checkpoint, write_marker
from umr.models.registry import tiny_model_dir
from umr.train.config import TrainConfig

NARROW = "u-marvel@64x2"
TASK = {"batch_by": "task"}
#: variant → (tiny model spec, recipe overrides, TrainConfig overrides)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "u-marvel": ("u-marvel", {}, {}),
    "no-template": ("u-marvel", {"template": "{image}{instruction}{text}"}, {}),
    "by-task": ("u-marvel", {}, TASK),
    "narrow": (NARROW, {}, {}),
    "narrow-by-task": (NARROW, {}, TASK),
    "narrow-by-task-lr3e-3": (NARROW, {}, {**TASK, "lr": 3e-3}),
    "narrow-by-task-lr3e-4": (NARROW, {}, {**TASK, "lr": 3e-4}),
    "narrow-by-task-lr1e-4": (NARROW, {}, {**TASK, "lr": 1e-4}),
    "narrow-by-task-lr3e-5": (NARROW, {}, {**TASK, "lr": 3e-5}),
    "narrow-by-task-lr1e-4-sym": (NARROW, {}, {**TASK, "lr": 1e-4, "symmetric": True}),
    "narrow-by-task-last": (NARROW, {"pooling": "last", "attention": "causal", "exclude_instruction": False},
                            {**TASK, "lr": 3e-4}),
    "narrow-lr1e-4": (NARROW, {}, {"lr": 1e-4}),
    "clip-sf": ("clip-sf", {}, {}),
    "clip-by-task": ("clip-sf", {}, TASK),
    "clip-lr3e-4": ("clip-sf", {}, {"lr": 3e-4}),
    "clip-lr1e-4": ("clip-sf", {}, {"lr": 1e-4}),
    "clip-lr3e-3": ("clip-sf", {}, {"lr": 3e-3}),
    "text": ("text", {}, {"lr": 1e-4, "tasks": ["task1", "task2", "task6", "task8"]}),
    "text-top2": ("text", {}, {"lr": 1e-4, "tasks": ["task1", "task2", "task6", "task8"],
                               "frozen": [r"\.embeddings\.", r"\.encoder\.layer\.[0-3]\."]}),
}


def model_dir(spec: str, overrides: dict[str, Any], out: Path) -> str:
    """The variant's model: "text", the cached tiny model, or a copy of it with changed recipe settings."""
    if spec == "text":
        return spec
    base = tiny_model_dir(spec)
    if not overrides:
        return str(base)
    digest = hashlib.sha1(json.dumps([spec, overrides], sort_keys=True).encode()).hexdigest()[:8]
    folder = out / f"model-{digest}"
    if not (folder / "umr_recipe.json").is_file():
        shutil.copytree(base, folder, dirs_exist_ok=True)
        recipe, saved = recipe_for_checkpoint(str(base))
        write_marker(folder, recipe, {**saved, **overrides}, built_by="mllm_probe")
    return str(folder)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: {sys.argv[0]} VARIANT [STEPS] [OUT]; variants: {', '.join(VARIANTS)}\n{__doc__}")
    torch.set_num_threads(1)
    name, steps = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else Path("runs/mllm-probe")
    world = out / "world-s2"
    if not (world / "world.json").is_file():
        build_world(world, size="small", seed=2)
    spec, recipe_over, train_over = VARIANTS[name]
    t0 = time.time()
    cfg: dict[str, Any] = {"batch_size": 32, "epochs": 10_000, "device": "cpu", "log_every": 50, "warmup_steps": 10,
                           "lr": 1e-3, "train_vision": spec not in ("clip-sf", "text"), **train_over}
    run = train_baseline(TrainConfig.of(model=model_dir(spec, recipe_over, out), data=str(world),
                                     output_dir=str(out / f"{name}-{steps}"), max_steps=steps, **cfg))
    result = evaluate_model(run["final"], world, out / "eval", f"{name}-{steps}")
    print(json.dumps({"variant": name, "steps": steps, "mean": result["average"],
                      "sets": {k: v["headline"] for k, v in result["sets"].items()},
                      "seconds": round(time.time() - t0)}))


if __name__ == "__main__":
    main()
