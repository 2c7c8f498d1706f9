"""Issue 31 probe: pretrain a tiny base exactly as the shipped `tiny:u-marvel@64x2+pre`, changed in one way.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/pretrain_variant.py --rope-theta 10 --out DIR
    ... --init-std 0.2 --out DIR        # the LLM's matrices re-drawn (as judge_plateau_probe.reinit does)
    ... --recipe gme --out DIR          # another recipe's tiny model (GME: last-token pooling; LamRA: <emb>)

The settings, world and seed are `umr.train.pretrain_tiny`'s (1,000 steps of 32 on the pretraining world, seed
1000, one torch thread, so a rerun gives the same weights). The model lands in OUT/run/final: give it to
`vision_attribute_probe.py --model` and `hard_negative_probe.py --base` (docs/quality.md §10 has the table).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from judge_plateau_probe import reinit  # sibling probe (run from examples/)

from umr.data.world import build_world
from umr.models.registry import tiny_model_dir
from umr.train.pretrain_tiny import WORLD, pretrain_config
from umr.train.stages import make_trainer


def variant_start(out: Path, recipe: str, rope_theta: float | None, init_std: float | None) -> Path:
    """The random tiny model, copied to OUT/start and changed as asked (once)."""
    start = out / "start"
    if start.exists():
        return start
    tmp = out / "start.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(tiny_model_dir(f"{recipe}@64x2"), tmp)
    if rope_theta is not None:
        config = json.loads((tmp / "config.json").read_text())
        config["text_config"]["rope_theta"] = rope_theta
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
    if init_std is not None:
        from transformers import Qwen2VLForConditionalGeneration

        model = Qwen2VLForConditionalGeneration.from_pretrained(tmp)
        reinit(model, init_std)
        model.save_pretrained(tmp)
    tmp.rename(start)
    return start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="u-marvel", choices=["u-marvel", "gme", "lamra"])
    ap.add_argument("--rope-theta", type=float, default=None, help="the LLM's rotary base (the tiny bases: 1e6)")
    ap.add_argument("--init-std", type=float, default=None, help="re-draw the LLM's matrices with this std")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = variant_start(args.out, args.recipe, args.rope_theta, args.init_std)
    world = args.out / "world"
    if not (world / "world.json").is_file():
        build_world(world, size=WORLD["size"], seed=WORLD["seed"], looks=WORLD["looks"])
    torch.set_num_threads(1)
    trainer = make_trainer(pretrain_config("u-marvel@64x2", world, args.out / "run", model=str(start)))
    print(json.dumps(trainer.fit(resume=True)))
    print(trainer.save_final())


if __name__ == "__main__":
    main()
