"""`umr demo`: the whole system offline, end to end (the README's main command)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the whole system offline: world → staged training + baselines → mine → re-rank → eval → "
        "index → report",
        description="Generate the offline benchmark world; train a tiny Qwen2-VL embedder with the U-MARVEL-style "
        "staged recipe (text → caption → instruction → mined hard negatives → re-ranker → distillation) and the "
        "baselines (plain contrastive, CLIP-SF, text-only) on the same budget; evaluate them on local and global "
        "pools, re-rank, build a FAISS index and write OUT/report/report.html (tables, plots, example queries). "
        "Needs no network. Every finished step is kept: rerunning the same command resumes (a failed step says "
        "which and why). --size small (default) takes 7 to 10 minutes on 2 CPU cores; --size tiny is the "
        "seconds-long smoke version the tests run. The plans are in umr/demo/plans.yaml. "
        "--seeds runs the whole demo once per seed and reports every measure as mean ± sd over the seeds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="where every step writes its files")
    p.add_argument("--size", default="small", choices=["tiny", "small"], help="world size and training budget")
    which = p.add_mutually_exclusive_group()
    # default SUPPRESS, not 0: argparse does not count `--seed 0` as given when its value is the default object,
    # so `--seed 0 --seeds 1 2` would pass silently (and SUPPRESS keeps "(default: None)" out of --seeds' help)
    which.add_argument("--seed", type=int, default=argparse.SUPPRESS,
                       help="world and training seed (same seed → same numbers); default 0")
    which.add_argument("--seeds", type=int, nargs="+", metavar="S", default=argparse.SUPPRESS,
                       help="run the whole demo once per seed, in order, into OUT/seed-S (each about 8 minutes at "
                       "--size small; each resumes on rerun), then write OUT/seeds.json and OUT/seeds.md and print "
                       "every measure as mean ± sd (sample sd, n − 1; an effect's sd is that of its per-seed "
                       "difference). The settings were chosen on validation seeds 2 and 3, so report on seeds "
                       "that exclude them, e.g. --seeds 0 1 4")
    p.add_argument("--jobs", type=int, default=2, choices=[1, 2],
                   help="2: the plan's `parallel` baselines run in a second process beside the staged chain (one "
                   "torch thread each); 1: everything in this process, one step after another")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from umr.demo import DemoStepError, run_demo

    if getattr(args, "seeds", None):
        return run_seeds(args)
    try:
        run_demo(args.out, size=args.size, seed=getattr(args, "seed", 0), jobs=args.jobs)
    except DemoStepError as exc:
        print(f"error: {exc}")
        return 1
    return 0


def run_seeds(args: argparse.Namespace) -> int:
    from rich.console import Console

    from umr.demo import DemoStepError, run_demo
    from umr.demo.seeds import aggregate, seed_measures, seeds_table, write_seeds_report
    from umr.errors import UmrError

    seeds: list[int] = args.seeds
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:  # a repeated seed is the same run again: it would only shrink the sd
        raise UmrError(f"--seeds: {twice} given more than once; give each seed once")
    console = Console()
    per_seed: dict[int, dict[str, float]] = {}
    for i, seed in enumerate(seeds, 1):
        console.rule(f"seed {seed} ({i}/{len(seeds)}) → {args.out / f'seed-{seed}'}")
        try:
            summary = run_demo(args.out / f"seed-{seed}", size=args.size, seed=seed, jobs=args.jobs,
                               console=console)
        except DemoStepError as exc:
            print(f"error: seed {seed}: {exc}")
            print(f"the seeds finished so far ({', '.join(map(str, per_seed)) or 'none'}) are kept in {args.out}; "
                  "rerun the same command to resume")
            return 1
        per_seed[seed] = seed_measures(summary)
    agg = aggregate(per_seed)
    md = write_seeds_report(per_seed, agg, args.out)
    console.print(seeds_table(agg))
    print(f"written: {md} and {md.with_suffix('.json')}")  # plain: rich would wrap a long path mid-name
    return 0
