"""Issue 10 probe: does a "pretrained" tiny base (trained on a world with another seed) close the gap to CLIP-SF?

    HF_HUB_OFFLINE=1 .venv/bin/python examples/pretrained_base_probe.py tiny:u-marvel 800 300
    HF_HUB_OFFLINE=1 .venv/bin/python examples/pretrained_base_probe.py tiny:clip-sf 800 300

Trains MODEL for PRE steps on `umr world --size small --seed 1` (disjoint objects from the demo's seed-0 world),
evaluates it on the seed-0 test split (local pools), fine-tunes it FT more steps on the seed-0 train split and
evaluates again; prints one JSON line. Batch 32, one torch thread (two probes can share 2 cores). Measured
2026-11-23: clip-sf 41.5 → 49.1, u-marvel 11.2 → 20.7 (mean headline recall).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from umr.data.world import build_world
from umr.demo.pipeline import evaluate_model, train_baseline
from umr.train.config import TrainConfig


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(f"usage: {sys.argv[0]} MODEL PRE_STEPS FT_STEPS [OUT]\n{__doc__}")
    torch.set_num_threads(1)
    model, pre_steps, ft_steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out = Path(sys.argv[4]) if len(sys.argv) > 4 else Path("runs/pretrained-probe")
    slug = model.replace(":", "-")
    worlds = {seed: out / f"world-s{seed}" for seed in (0, 1)}
    for seed, path in worlds.items():
        if not (path / "world.json").is_file():
            build_world(path, size="small", seed=seed)
    t0 = time.time()
    common = {"batch_size": 32, "epochs": 10_000, "device": "cpu", "log_every": 50, "warmup_steps": 10}
    if "clip" not in model:
        common["train_vision"] = True
    pre = train_baseline(TrainConfig.of(model=model, data=str(worlds[1]), output_dir=str(out / f"{slug}-pre"),
                                     max_steps=pre_steps, lr=1e-3, **common))
    e_pre = evaluate_model(pre["final"], worlds[0], out / f"{slug}-eval", "pre")
    ft = train_baseline(TrainConfig.of(model=pre["final"], data=str(worlds[0]), output_dir=str(out / f"{slug}-ft"),
                                    max_steps=ft_steps, lr=5e-4, **common))
    e_ft = evaluate_model(ft["final"], worlds[0], out / f"{slug}-eval", "ft")
    print(json.dumps({"model": model, "pre_steps": pre_steps, "ft_steps": ft_steps,
                      "pretrained_only": e_pre["average"], "fine_tuned": e_ft["average"],
                      "seconds": round(time.time() - t0)}))


if __name__ == "__main__":
    main()
