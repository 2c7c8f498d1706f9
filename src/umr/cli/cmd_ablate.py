"""`umr ablate`: the issue-6 ablation table (mining, re-ranking, distillation, continual text) on the offline world."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from umr.ablation.config import AblationConfig
from umr.cli.argtypes import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    d = AblationConfig()
    p = sub.add_parser(
        "ablate", help="run the hard-negative / modality / FN-filter / re-rank / distill / continual-text ablation",
        description="Generate (or reuse) the offline world, train (or take, --base) a base model, then train one\n"
        "stage per arm from it and evaluate each on the test split:\n"
        "  (a) global-pool wrong-modality share, random vs modality-aware mined negatives;\n"
        "  (b) mean R@5: in-batch negatives only vs + mined hard negatives, without / with the FN filter;\n"
        "  (c) composed-task (task 7) R@5 before / after re-ranking with a point-wise trained re-ranker;\n"
        "  (d) mean R@5 before / after distillation from the fused (cos + w·P(Yes)) teacher;\n"
        "  (e) text and multimodal R@5 before / after continual text fine-tuning.\n"
        "Writes OUT/ablation.json and OUT/ablation.md (each row with what one query is worth).\n"
        "Resumable: mined files, finished stages (final/) and evaluations (evals/*.json) in OUT are reused as\n"
        "they are, so a crashed run continues; after changing a setting, use a new --out.",
        epilog="examples:\n  umr ablate --size tiny --out runs/ablate-tiny --base-steps 60 --steps 30\n"
        "  umr ablate --size small --out runs/ablate-seeds --base tiny:u-marvel@64x2+pre --seeds 0 1 4 \\\n"
        "      --steps 60 --batch-size 32 --lr 1e-4 --small-lr 5e-5 --fn-skip 2 --rerank 5 --rerank-steps 40 \\\n"
        "      --teacher-queries 30                                                       (docs/ablation.md)\n"
        "  umr ablate --size small --out runs/ablate-small --base runs/world-small-base/final --steps 150 \\\n"
        "      --lr 2e-4 --small-lr 1e-4 --rerank-steps 200 --teacher-queries 24      (docs/ablation.md, ~28 min)\n"
        "On a CPU shared with other jobs, OMP_NUM_THREADS=1 avoids thread oversubscription.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=d.out, help=f"output folder (default {d.out})")
    p.add_argument("--size", default=d.size, help=f"world size: tiny, small, medium, large (default {d.size})")
    p.add_argument("--seed", type=int, default=d.seed, help="world, data order and initialisation seed")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                   help="run the whole ablation once per seed (OUT/seed-S) and write OUT/seeds.md: every row and "
                   "each arm's effect as mean ± sd over the seeds, with its sign (overrides --seed)")
    p.add_argument("--base", default=None, metavar="MODEL",
                   help="start every arm from this model instead of training a base: a base stage's final/ trained "
                   "on the same world, or a pretrained tiny base such as tiny:u-marvel@64x2+pre")
    p.add_argument("--base-steps", type=int, default=d.base_steps,
                   help=f"without --base: steps of the base stage (default {d.base_steps}; ~1000 at size small)")
    p.add_argument("--base-batch-size", type=positive_int, default=d.base_batch_size, help="batch of the base stage")
    p.add_argument("--steps", type=int, default=d.steps, help=f"steps of every ablation stage (default {d.steps})")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="batch of the ablation stages")
    p.add_argument("--lr", type=float, default=d.lr, help="LR of the contrastive ablation stages (full FT)")
    p.add_argument("--small-lr", type=float, default=d.small_lr, help="LR of the distill and continual-text stages")
    p.add_argument("--negatives", type=int, default=d.negatives, help="mined negatives per query")
    p.add_argument("--top", type=int, default=d.top, help="retrieved list length negatives are mined from")
    p.add_argument("--fn-ratio", type=float, default=d.fn_ratio,
                   help="false-negative filter: drop candidates above RATIO × the positive's score")
    p.add_argument("--fn-skip", type=int, default=d.fn_skip, metavar="N",
                   help="the FN arm skips the N best-ranked candidates of the task's modality instead of the ratio "
                   "rule (a rank window: works at any cosine scale; 0 = use --fn-ratio)")
    p.add_argument("--rerank", type=int, default=d.rerank, help="top-N re-ranked in (c) and distilled in (d)")
    p.add_argument("--fuse-weight", type=float, default=d.fuse_weight, help="fused score = cos + W · P(Yes)")
    p.add_argument("--rerank-steps", type=int, default=None, help="re-ranker training steps (default --steps)")
    p.add_argument("--rerank-lr", type=float, default=d.rerank_lr, help="re-ranker LoRA learning rate")
    p.add_argument("--teacher-queries", type=int, default=d.teacher_queries,
                   help="distillation teacher lists for the first N train queries of each set (re-ranking cost)")
    p.add_argument("--text-share", type=float, default=d.text_share,
                   help="continual text FT: share of multimodal pairs mixed in")
    p.add_argument("--device", default=d.device, help="cpu / cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.ablation import run_ablation

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    fields = {k: getattr(args, k) for k in AblationConfig.__dataclass_fields__}
    if args.seeds:
        from umr.ablation.seeds import run_seeds

        print(f"wrote {run_seeds(AblationConfig(**fields), list(dict.fromkeys(args.seeds)))}")
        return 0
    run_ablation(AblationConfig(**fields))
    return 0
