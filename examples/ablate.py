"""Ablations of issue 6 on the offline world with the tiny Qwen2-VL (gme recipe), CPU only.

    HF_HUB_OFFLINE=1 .venv/bin/python examples/ablate.py --out runs/ablate --size tiny --steps 40

Prints one table:
  (a) global-pool wrong-modality share (top-10) after a stage with random vs modality-aware mined negatives;
  (b) mean R@5 (local pools) with in-batch negatives only vs + mined hard negatives, without / with the
      false-negative filter;
  (c) R@5 on the composed tasks (task 7) before / after re-ranking with a point-wise trained re-ranker;
  (d) mean R@5 before / after the distillation stage;
  (e) text-task (task 1) and multimodal-task R@5 before / after continual text fine-tuning.

Every stage starts from the same "base" model (full fine-tuning of the random tiny MLLM, design §7), runs the
same number of steps, and is evaluated on the test split. The numbers are what this run measured — at tiny
sizes they move by a few queries, so read them with the query counts in mind (printed below the table).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/ablate"))
    p.add_argument("--size", default="tiny", help="world size (tiny, small, …)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-steps", type=int, default=60, help="steps of the base stage (random → pretrained)")
    p.add_argument("--steps", type=int, default=30, help="steps of every ablation stage")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--negatives", type=int, default=2, help="mined negatives per query")
    p.add_argument("--fn-ratio", type=float, default=0.95)
    p.add_argument("--rerank", type=int, default=10, help="top-N re-ranked in (c) and distilled in (d)")
    p.add_argument("--fuse-weight", type=float, default=1.0)
    return p.parse_args()


def main() -> None:  # noqa: PLR0915 - one linear script, top to bottom
    args = parse()
    from umr.data.world import build_world
    from umr.eval.baselines import RandomEmbedder
    from umr.eval.mbeir import EvalOptions, evaluate
    from umr.mine.job import mine
    from umr.mine.negatives import MineOptions
    from umr.models.registry import load_embedder
    from umr.rerank.prompted import Reranker
    from umr.rerank.train import RerankTrainConfig, train_reranker
    from umr.train.distill import build_teacher
    from umr.train.lora import LoraSpec
    from umr.train.stages import make_trainer
    from umr.train.trainer import TrainConfig

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    world = out / f"world-{args.size}-{args.seed}"
    if not (world / "world.json").is_file():
        build_world(world, args.size, seed=args.seed)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f}s] {msg}", flush=True)

    def pairs(name: str, model: object, cache: str, **kw: object) -> str:
        path = out / f"{name}.jsonl"
        if not path.is_file() or path.stat().st_size == 0:
            # one embedding cache per mining model: the hard / filtered / top-N files reuse the same vectors
            s = mine(model, world, path, cache_dir=out / "cache" / cache, **kw)
            log(f"{name}: {s.written} rows, fn dropped {s.fn_dropped}, wrong-modality {s.wrong_modality_share:.2f}")
        return str(path)

    def train(name: str, model: str, data: str, steps: int, **kw: object) -> str:
        final = out / name / "final"
        if (final / "umr_recipe.json").is_file():
            return str(final)
        cfg = TrainConfig(model=model, data=data, output_dir=str(out / name), max_steps=steps, epochs=10_000,
                          batch_size=args.batch_size, lr=kw.pop("lr", 1e-3), learn_temperature=False,
                          seed=args.seed, device="cpu", log_every=10, **kw)
        trainer = make_trainer(cfg)
        s = trainer.fit()
        log(f"{name}: {s['steps']} steps, loss {s['first_loss']:.3f} → {s['last_loss']:.3f}")
        return str(trainer.save_final())

    def ev(model: str, pool: str = "local", reranker: object = None, tasks: list[str] | None = None) -> object:
        emb = load_embedder(model, device="cpu")
        opts = EvalOptions(pool=pool, tasks=tasks, check_images=False, rerank=args.rerank if reranker else 0,
                           fuse_weight=args.fuse_weight)
        return evaluate(emb, world, opts, reranker=reranker)

    def r5(report: object, keep: object = lambda r: True) -> float:  # noqa: ANN001
        vals = [r.metrics.recall[5] for r in report.results if keep(r)]
        return 100 * float(np.mean(vals)) if vals else float("nan")

    def wrong(report: object) -> float:
        return 100 * float(np.mean([r.wrong_modality for r in report.results]))

    # -- data: pairs with random negatives (the in-batch / random baseline and the mixing data) -----------------
    rnd = pairs("random-neg", RandomEmbedder(), "random", pool="global",
                opts=MineOptions(take=args.negatives, strategy="random", seed=args.seed))
    text = pairs("text-random-neg", RandomEmbedder(), "random", pool="local", tasks=["task1"],
                 opts=MineOptions(take=args.negatives, strategy="random", seed=args.seed))
    base = train("base", "tiny:gme", rnd, args.base_steps)
    base_emb = load_embedder(base, device="cpu")
    hard = pairs("hard", base_emb, "base", pool="local", opts=MineOptions(top=50, take=args.negatives))
    hard_fn = pairs("hard-fn", base_emb, "base", pool="local", opts=MineOptions(top=50, take=args.negatives,
                                                                        fn_ratio=args.fn_ratio))
    mod = pairs("modality-aware", base_emb, "base", pool="global",
                opts=MineOptions(top=50, take=args.negatives, modality_aware=True))
    top_n = pairs("top-n", base_emb, "base", pool="local", opts=MineOptions(top=50, take=20))
    del base_emb

    # (b) in-batch only vs hard negatives, without / with the false-negative filter
    m_inb = train("inbatch", base, rnd, args.steps, num_negatives=0)
    m_hard = train("hard", base, hard, args.steps, num_negatives=args.negatives)
    m_hfn = train("hard-fn", base, hard_fn, args.steps, num_negatives=args.negatives)
    # (a) random vs modality-aware negatives, judged on the global pool
    m_rnd = train("random-neg", base, rnd, args.steps, num_negatives=args.negatives)
    m_mod = train("modality-aware", base, mod, args.steps, num_negatives=args.negatives)
    rows: list[tuple[str, str, float]] = []
    g_rnd, g_mod = ev(m_rnd, "global"), ev(m_mod, "global")
    rows += [("a", "global wrong-modality % (top-10), random negatives", wrong(g_rnd)),
             ("a", "global wrong-modality % (top-10), modality-aware negatives", wrong(g_mod)),
             ("a", "global mean R@5, random / modality-aware", r5(g_rnd)), ("a", "", r5(g_mod))]
    rep_inb, rep_hard, rep_hfn = ev(m_inb), ev(m_hard), ev(m_hfn)
    rows += [("b", "mean R@5, in-batch only", r5(rep_inb)), ("b", "mean R@5, + hard negatives", r5(rep_hard)),
             ("b", "mean R@5, + hard negatives + FN filter", r5(rep_hfn))]
    log("(a), (b) done")

    # (c) re-ranking the composed tasks with a point-wise re-ranker trained from the base model
    rr_dir = out / "reranker" / "final"
    if not (rr_dir / "umr_reranker.json").is_file():
        train_reranker(RerankTrainConfig(model=base, data=top_n, output_dir=str(out / "reranker"),
                                         lora=LoraSpec(r=8, alpha=16, dropout=0.0), lr=5e-4,
                                         max_steps=args.steps, batch_size=8, seed=args.seed, device="cpu"))
    rr = Reranker(rr_dir, device="cpu")
    comp = ["task7"]
    rows += [("c", "composed (task 7) R@5, retrieval only", r5(ev(m_hard, tasks=comp))),
             ("c", f"composed (task 7) R@5, + re-rank top-{args.rerank}", r5(ev(m_hard, reranker=rr, tasks=comp)))]
    log("(c) done")

    # (d) distillation from the fused teacher over each train query's top-N
    teacher = out / "teacher.jsonl"
    build_teacher(load_embedder(m_hard, device="cpu"), world, teacher, reranker=rr, weight=args.fuse_weight,
                  top=args.rerank, pool="local", cache_dir=out / "cache" / "teacher")
    m_dist = train("distill", m_hard, str(teacher), args.steps, type="distill", lr=2e-4)
    rows += [("d", "mean R@5 before distillation", r5(rep_hard)), ("d", "mean R@5 after distillation",
                                                                      r5(ev(m_dist)))]
    log("(d) done")

    # (e) continual text fine-tuning: text pairs at a small LR with a quarter multimodal pairs
    m_text = train("continual-text", m_hard, text, args.steps, lr=2e-4, mix_data=rnd, mix_share=0.25)
    rep_text = ev(m_text)

    def is_text(r: object) -> bool:
        return r.task_id == 1

    rows += [("e", "text task (task 1) R@5 before / after", r5(rep_hard, is_text)), ("e", "", r5(rep_text, is_text)),
             ("e", "multimodal tasks mean R@5 before / after", r5(rep_hard, lambda r: not is_text(r))),
             ("e", "", r5(rep_text, lambda r: not is_text(r)))]
    log("(e) done")

    n_q = {r.name: r.metrics.n_queries for r in rep_hard.results}
    print(f"\nablation on world size={args.size} seed={args.seed}: base {args.base_steps} steps, each stage "
          f"{args.steps} steps of batch {args.batch_size}; {len(n_q)} test sets of {sorted(set(n_q.values()))} "
          "queries (one query = " + ", ".join(f"{100 / n:.0f} R@5 points" for n in sorted(set(n_q.values()))) + ")")
    print(f"{'':3}{'measure':<62}{'value':>8}")
    for part, label, value in rows:
        print(f"({part}) {label:<62}{value:8.1f}")
    (out / "ablation.json").write_text(json.dumps([{"part": p, "measure": m, "value": v} for p, m, v in rows],
                                                  indent=1) + "\n")


if __name__ == "__main__":
    main()
