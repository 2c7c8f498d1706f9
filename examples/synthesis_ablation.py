"""Does GME-style synthesised fused-modal data help? An ablation on the offline world (tiny Qwen2-VL, CPU).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/synthesis_ablation.py --out runs/synth-ablation \
        --size small --base-steps 400 --steps 300

1. build the world (train / val / test splits with disjoint objects);
2. "base": full fine-tuning of the random tiny:gme on the world's train split (the shared start point, design §7);
3. synthesise fused-modal pairs with the rule generator from the TRAIN split only, filtered by the base model
   (retriever consistency: keep a query when base ranks its positive within --top-k of the kind's pool);
4. two arms from base, same steps and batch size: (A) world train pairs only, (B) world + synthesised pairs
   (a --mix-share of every epoch's pairs are synthetic);
5. evaluate base, A and B on the test split (local pools) and print R@5 per task, the fused-modal mean (tasks
   2, 6, 7, 8) and the all-task mean.

The world is used as generated (no tuning); the numbers are what this run measured.
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-steps", type=int, default=400, help="steps of the shared base stage")
    p.add_argument("--steps", type=int, default=300, help="steps of each arm (the same budget for both)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4, help="learning rate of the arms (base: 1e-3)")
    p.add_argument("--limit", type=int, default=1500, help="synthesis sources (a seeded sample of the train split)")
    p.add_argument("--top-k", type=int, default=10, help="consistency filter: positive within the top k")
    p.add_argument("--mix-share", type=float, default=0.3, help="share of arm B's pairs that are synthetic")
    return p.parse_args()


def main() -> None:
    args = parse()
    from umr.data.synthesis import SynthConfig, synthesize
    from umr.data.world import build_world
    from umr.eval.mbeir import EvalOptions, evaluate
    from umr.models.registry import load_embedder
    from umr.train.trainer import TrainConfig, Trainer

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f}s] {msg}", flush=True)

    world = out / f"world-{args.size}-{args.seed}"
    if not (world / "world.json").is_file():
        build_world(world, args.size, seed=args.seed)
    log(f"world {world}")

    def train(name: str, model: str, steps: int, lr: float, **kw: object) -> str:
        final = out / name / "final"
        if (final / "umr_recipe.json").is_file():
            return str(final)
        cfg = TrainConfig(model=model, data=str(world), output_dir=str(out / name), max_steps=steps, epochs=10_000,
                          batch_size=args.batch_size, lr=lr, learn_temperature=False, symmetric=True,
                          warmup_steps=20, train_vision=True, seed=args.seed, device="cpu", log_every=25, **kw)
        trainer = Trainer(cfg)
        s = trainer.fit()
        log(f"{name}: {s['steps']} steps on {len(trainer.pairs)} pairs, loss {s['first_loss']:.3f} → "
            f"{s['last_loss']:.3f}")
        return str(trainer.save_final())

    base = train("base", "tiny:gme", args.base_steps, 1e-3)
    synth = out / f"synth-l{args.limit}-k{args.top_k}"
    report = synthesize(SynthConfig(source=str(world), out=str(synth), generator="rule", filter_model=base,
                                    top_k=args.top_k, limit=args.limit, split="train", seed=args.seed))
    log(f"synthesis ({report.seconds:.0f}s, filter: base model, top-{args.top_k}):\n{report.table()}")
    arm_a = train("arm-world", base, args.steps, args.lr)
    arm_b = train(f"arm-world+synth-l{args.limit}-k{args.top_k}-m{args.mix_share}", base, args.steps, args.lr,
                  mix_data=str(synth), mix_share=args.mix_share)

    def r5_by_task(model: str) -> dict[int, float]:
        cached = Path(model).parent / "r5_by_task.json"  # one evaluation per trained model, reused by reruns
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
    print(f"arms: {args.steps} steps × batch {args.batch_size} each from base ({args.base_steps} steps); "
          f"B mixes {args.mix_share:.0%} synthesised pairs; total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
