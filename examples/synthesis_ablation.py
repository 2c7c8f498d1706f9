"""Does GME-style synthesised fused-modal data help? An ablation on the offline world (tiny Qwen2-VL, CPU).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/synthesis_ablation.py --out runs/synth-ablation \
        --size small --base-steps 400 --steps 300

    # from an already trained base (trained on the world this script builds for --size / --world-seed):
    OMP_NUM_THREADS=1 .venv/bin/python examples/synthesis_ablation.py --size small \
        --base runs/ablate-small/base-world-small/final --steps 300 --batch-size 32 --top-k 50 \
        --out runs/synth-ablation-2
    # the same arms with another data order (world, base and synthesis unchanged; arms are saved per seed):
    ... --seed 1 --world-seed 0

1. build the world (train / val / test splits with disjoint objects);
2. "base": full fine-tuning of the random tiny:gme on the world's train split (the shared start point, design §7),
   or --base MODEL_DIR: a model already trained on this world (it must be the world --size / --world-seed build);
3. synthesise fused-modal pairs with the rule generator from the TRAIN split only, filtered by the base model
   (retriever consistency: keep a query when base ranks its positive within --top-k of the kind's pool); the
   (image+text)→(image+text) queries show a mirrored copy of the positive's image (--query-image same: the
   positive's own image, which a model can match by copy; the world's task 8 queries show another rendering);
4. two arms from base, same steps and batch size: (A) world train pairs only, (B) world + synthesised pairs
   (a --mix-share of every epoch's pairs are synthetic);
5. evaluate base, A and B on the test split (local pools) and print R@5 per task, the fused-modal mean (tasks
   2, 6, 7, 8) and the all-task mean.

The world is used as generated (no tuning); the numbers are what this run measured.

Measured 2026-11-23 with the demo's training settings (fused = mean R@5 of tasks 2, 6, 7, 8; 3 data-order seeds):

    for s in 0 1 2; do OMP_NUM_THREADS=1 .venv/bin/python examples/synthesis_ablation.py --out runs/synth-s3 \
        --size small --model tiny:u-marvel@64x2 --base-steps 300 --base-lr 1e-4 --batch-by task --steps 300 \
        --batch-size 32 --lr 1e-4 --top-k 50 --limit 1500 --seed $s --world-seed 0; done

    seed   A fused  B fused   A t2  B t2   A t6  B t6   A t7  B t7   A t8  B t8
    0        30.0     23.4    20.0  13.5   22.5   6.5   17.5  19.0   60.0  54.5
    1        27.6     28.5    19.5  13.0   15.5  16.0   13.0  20.0   62.5  65.0
    2        31.5     26.9    23.5  17.0   21.0  14.0   18.0  18.0   63.5  58.5

The rule generator's synthetic pairs (19 % of B's pairs) lower the fused mean by 3.4 points on average; task 2, the
kind t2it imitates, falls on every seed.

The fused-modal *gap* GME's synthesis is for — no fused-modal training data: base and arms train on tasks 0, 1, 3, 4
only (`--train-tasks task0 task1 task3 task4`, same command otherwise, `--out runs/synth-gap`, seeds 0-4):

    seed   A fused  B fused   A t2  B t2   A t6  B t6   A t7  B t7   A t8  B t8   A all  B all
    0        18.5     21.4     6.0   6.0    9.5   8.5   15.5  16.0   43.0  55.0   32.0   29.6
    1        19.4     21.6     8.5   5.0    8.0  10.5   16.0  14.5   45.0  56.5   32.6   32.2
    2        19.2     19.6     9.5  11.5    8.5   9.0   15.5  12.5   43.5  45.5   31.9   30.0
    3        18.2     21.5     4.5   6.0   12.0   7.5   13.0  14.5   43.5  58.0   31.2   31.1
    4        19.5     23.6     8.0   9.0   10.5  14.5   15.0  14.0   44.5  57.0   32.2   35.2
    mean     19.0     21.5     7.3   7.5    9.7  10.0   15.0  14.3   43.9  54.4   32.0   31.6

There the synthetic pairs (30 % of B's pairs) raise the fused mean on every seed (+2.6 on average, paired t ≈ 4.1
over 5 seeds), all of it from task 8 (the it2it kind, 963 of the 1,516 kept pairs); the all-task mean is unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FUSED = (2, 6, 7, 8)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/synth-ablation"))
    p.add_argument("--size", default="small", help="world size (tiny, small)")
    p.add_argument("--seed", type=int, default=0, help="seed of the arms (their data order)")
    p.add_argument("--world-seed", type=int, default=None,
                   help="seed of the world, the base stage and the synthesis sample (default: --seed)")
    p.add_argument("--base", type=Path, default=None,
                   help="start both arms (and filter synthesis) from this trained model instead of a base stage")
    p.add_argument("--model", default="tiny:gme", help="the random model the base stage starts from")
    p.add_argument("--base-steps", type=int, default=400, help="steps of the shared base stage")
    p.add_argument("--base-lr", type=float, default=1e-3, help="learning rate of the base stage")
    p.add_argument("--train-tasks", nargs="*", default=None, metavar="TASK",
                   help="world tasks the base and both arms train on (e.g. task0 task1 task3 task4: no fused-modal "
                   "training data, the gap GME's synthesis fills); default: every task")
    p.add_argument("--batch-by", default="none", choices=["none", "task"],
                   help="batches mixed across tasks, or drawn from one task each (TrainConfig.batch_by)")
    p.add_argument("--steps", type=int, default=300, help="steps of each arm (the same budget for both)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4, help="learning rate of the arms (base: 1e-3)")
    p.add_argument("--limit", type=int, default=1500, help="synthesis sources (a seeded sample of the train split)")
    p.add_argument("--top-k", type=int, default=10, help="consistency filter: positive within the top k")
    p.add_argument("--mix-share", type=float, default=0.3, help="share of arm B's pairs that are synthetic")
    p.add_argument("--query-image", default="mirror", choices=["mirror", "same"],
                   help="it2it query image: a mirrored copy of the positive's (default) or the positive's own")
    args = p.parse_args()
    if args.world_seed is None:
        args.world_seed = args.seed
    if args.base is not None and not (args.base / "umr_recipe.json").is_file():
        p.error(f"--base {args.base}: no umr_recipe.json there (not a saved model)")
    return args


def main() -> None:
    args = parse()
    from umr.data.world import build_world
    from umr.eval.mbeir import EvalOptions, evaluate
    from umr.models.registry import load_embedder
    from umr.synthesis import SynthConfig, synthesize
    from umr.train.config import TrainConfig
    from umr.train.data import read_mbeir_root_pairs
    from umr.train.trainer import Trainer

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f}s] {msg}", flush=True)

    world = out / f"world-{args.size}-{args.world_seed}"
    if not (world / "world.json").is_file():
        build_world(world, args.size, seed=args.world_seed)
    log(f"world {world}")

    def train(name: str, model: str, steps: int, lr: float, seed: int, **kw: object) -> str:
        final = out / name / "final"
        if (final / "umr_recipe.json").is_file():
            return str(final)
        cfg = TrainConfig.of(model=model, data=str(world), output_dir=str(out / name), max_steps=steps, epochs=10_000,
                          batch_size=args.batch_size, lr=lr, learn_temperature=False, symmetric=True,
                          warmup_steps=20, train_vision=True, seed=seed, device="cpu", log_every=25,
                          batch_by=args.batch_by, tasks=args.train_tasks, **kw)
        trainer = Trainer(cfg)
        s = trainer.fit()
        log(f"{name}: {s['steps']} steps on {len(trainer.pairs)} pairs, loss {s['first_loss']:.3f} → "
            f"{s['last_loss']:.3f}")
        return str(trainer.save_final())

    if args.base is not None:
        base = str(args.base)
        log(f"base: {base} (given; no base stage)")
    else:
        base = train("base", args.model, args.base_steps, args.base_lr, args.world_seed)
    view = "-mirror" if args.query_image == "mirror" else ""
    synth = out / f"synth-l{args.limit}-k{args.top_k}{view}"
    report = synthesize(SynthConfig(source=str(world), out=str(synth), generator="rule", filter_model=base,
                                    top_k=args.top_k, limit=args.limit, split="train", seed=args.world_seed,
                                    query_image=args.query_image))
    log(f"synthesis ({report.seconds:.0f}s, filter: base model, top-{args.top_k}):\n{report.table()}")
    tag = f"-s{args.seed}" if args.base is not None or args.seed != args.world_seed else ""
    arm_a = train(f"arm-world{tag}", base, args.steps, args.lr, args.seed)
    arm_b = train(f"arm-world+synth-l{args.limit}-k{args.top_k}{view}-m{args.mix_share}{tag}", base, args.steps,
                  args.lr, args.seed, mix_data=str(synth), mix_share=args.mix_share)

    def r5_by_task(model: str) -> dict[int, float]:
        # one evaluation per model, reused by reruns (a given base's is kept in --out, its folder left untouched)
        cached = (out / "base-r5_by_task.json") if model == str(args.base) else Path(model).parent / "r5_by_task.json"
        if cached.is_file():
            return {int(k): v for k, v in json.loads(cached.read_text()).items()}
        rep = evaluate(load_embedder(model, device="cpu"), world, EvalOptions(pool="local", check_images=False))
        tasks = sorted({r.task_id for r in rep.results})
        r5 = {t: 100 * float(np.mean([r.metrics.recall[5] for r in rep.results if r.task_id == t])) for t in tasks}
        cached.write_text(json.dumps(r5) + "\n")
        return r5

    rows = {}
    for label, model in (("base (start point)", base), ("A: world only", arm_a), ("B: world + synth", arm_b)):
        rows[label] = r5_by_task(model)
        log(f"evaluated {label}")
    tasks = sorted(next(iter(rows.values())))
    head = f"{'R@5, test, local pools':24s}" + "".join(f"{'t' + str(t):>7s}" for t in tasks)
    print("\n" + head + f"{'fused':>8s}{'all':>7s}")
    for label, r in rows.items():
        fused, overall = np.mean([r[t] for t in FUSED if t in r]), np.mean(list(r.values()))
        print(f"{label:24s}" + "".join(f"{r[t]:7.1f}" for t in tasks) + f"{fused:8.1f}{overall:7.1f}")
    print(f"fused = mean of tasks {FUSED} (text→(i,t), (i,t)→t, (i,t)→i, (i,t)→(i,t)); per task: mean over its sets")
    start = f"{args.base}" if args.base is not None else f"base ({args.base_steps} steps)"
    n_world = len(read_mbeir_root_pairs(world, tasks=args.train_tasks))
    n_synth = sum(c["kept"] for c in report.counts.values())
    n_mixed = min(n_synth, round(n_world * args.mix_share / (1 - args.mix_share)))  # umr.train.continual.mix_pairs
    print(f"arms (seed {args.seed}): {args.steps} steps × batch {args.batch_size} each from {start}; "
          f"B adds {n_mixed} synthesised pairs to {n_world} world pairs ({n_mixed / (n_world + n_mixed):.1%}; "
          f"--mix-share {args.mix_share} capped by the {n_synth} kept); total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
