"""`umr pretrain-tiny`: rebuild a tiny pretrained base (`tiny:<spec>+pre`) from its recorded settings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from umr.train.caption_judge import JUDGE
    from umr.train.caption_judge import SPEC as JUDGE_SPEC
    from umr.train.pretrain_tiny import SETTINGS, WORLD

    p = sub.add_parser(
        "pretrain-tiny", help="rebuild a tiny pretrained base (tiny:<spec>+pre) bit for bit",
        description="Pretrain the tiny random model SPEC contrastively on its own world (`umr world --size "
        f"{WORLD['size']} --seed {WORLD['seed']}`, mixed batches, 1,000 steps of 32, one torch thread) and write "
        "OUT/final with pretrain.json (settings, losses, sha256 of the weights). The package ships these results "
        "as `tiny:<spec>+pre`; on the same torch build the sha256 matches the shipped pretrain.json. Resumable. "
        f"{JUDGE_SPEC} is the re-ranking judge: it learns to caption the same world's image-caption pairs "
        f"({JUDGE['steps']:,} steps of {JUDGE['batch_size']}, minutes; a stopped run starts again).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("spec", choices=sorted(SETTINGS) + [JUDGE_SPEC], help="which tiny model")
    p.add_argument("--out", type=Path, default=None,
                   help="the run folder (checkpoints, world, final/); default: the umr cache, where `tiny:<spec>+pre` "
                   "is looked up when the package lacks it")
    p.add_argument("--steps", type=int, default=None, help="fewer steps than the recorded ones (a smoke run)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.models.pretrained import built_dir, packaged_dir
    from umr.train.pretrain_tiny import pretrain

    if args.out is None:  # the cache folder pretrained_dir() looks in, written whole once the run is done
        target = built_dir(args.spec)
        final = pretrain(args.spec, target.with_name(target.name + ".run"), final=target, max_steps=args.steps)
    else:
        final = pretrain(args.spec, args.out, max_steps=args.steps)
    made = json.loads((final / "pretrain.json").read_text())
    shipped = packaged_dir(args.spec) / "pretrain.json"
    print(f"pretrained {made['spec']} → {final} (loss {made['first_loss']} → {made['last_loss']})")
    if shipped.is_file() and args.steps is None:
        same = json.loads(shipped.read_text())["sha256"] == made["sha256"]
        print("weights identical to the packaged ones" if same else
              "weights differ from the packaged ones (another torch build or CPU kernel changes the floats)")
    return 0
