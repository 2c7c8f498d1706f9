"""`umr train`: contrastive training of an embedder from a YAML config (single run or a chain of stages)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train an embedder (InfoNCE, LoRA or full, GradCache, stages) from a YAML config",
        description="Train from a YAML TrainConfig (see src/umr/train/configs/). Writes OUTPUT_DIR/log.jsonl, "
        "checkpoint-N/ every save_every steps and final/ (a folder load_embedder reads). With `stages:`, each "
        "stage trains on top of the previous one's merged model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", required=True, type=Path, help="training config YAML")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUTPUT_DIR")
    p.add_argument("--output-dir", default=None, help="override the config's output_dir")
    p.add_argument("--data", default=None, help="override the config's data file")
    p.add_argument("--max-steps", type=int, default=None, help="override max_steps (smoke runs)")
    p.add_argument("--device", default=None, help="override device (cpu, cuda, cuda:1 …)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.train.stages import make_trainer
    from umr.train.trainer import TrainConfig

    config = TrainConfig.from_yaml(args.config)
    for key in ("output_dir", "data", "max_steps", "device"):
        if getattr(args, key) is not None:
            setattr(config, key, getattr(args, key))
    if config.stages:
        from umr.train.stages import run_stages

        final = run_stages(config, resume=args.resume)
    else:
        trainer = make_trainer(config)
        summary = trainer.fit(resume=args.resume)
        final = trainer.save_final()
        print(f"{summary['steps']} steps, loss {summary['first_loss']} → {summary['last_loss']}, "
              f"τ {summary['tau']:.4f}, {summary['samples_per_s']:.1f} samples/s")
    print(f"model written to {final}")
    return 0
