"""Issue 31 probe: rerun only the demo chain's distillation stage with other settings, on a validation world.

    HF_HUB_OFFLINE=1 .venv/bin/umr demo --seed 2 --out runs/val2            # once: the chain up to its judge
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/distill_sweep.py runs/val2 2 \
        '{"pure-kl": {"distill_hard_weight": 0.0, "distill_in_batch": false}, "tau": {"distill_temperature": 0.2}}'

Each variant is the small plan's distill stage (umr/demo/plans.yaml) with the variant's keys over it (a
`teacher` mapping merges into the stage's), started from the run's hard-negative stage and taught by the run's
re-ranker stage, written to OUT/NAME. It prints the distilled model's local mean headline recall beside the hard
stage's (the run's report). A variant whose teacher is no better than the student (`require_better`) trains
nothing; it prints `skipped`. docs/quality.md §11 has the runs.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

from umr.demo.pipeline import evaluate_model, load_plan, staged_config
from umr.train.stages import run_stages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a finished `umr demo --size small` run folder")
    ap.add_argument("seed", type=int, help="its seed (a validation world: 2 or 3)")
    ap.add_argument("variants", type=json.loads, help='JSON: {"name": {stage key: value, ...}, ...}')
    ap.add_argument("--out", type=Path, default=None, help="default: RUN/distill-sweep")
    args = ap.parse_args()
    chain = args.run / "train" / "u-marvel"
    hard, judge = next(chain.glob("stage-*-hard")) / "final", next(chain.glob("stage-*-reranker")) / "final"
    before = json.loads((args.run / "report" / "summary.json").read_text())["eval"]["stage:hard"]["average"]
    for name, over in args.variants.items():
        plan = load_plan("small")
        stage = next(s for s in plan["staged"]["stages"] if s.get("type") == "distill")
        teacher = {**stage["teacher"], "reranker": str(judge), **over.pop("teacher", {})}
        plan["staged"]["stages"] = [{**copy.deepcopy(stage), **over, "teacher": teacher}]
        plan["staged"]["model"] = str(hard)
        out = (args.out or args.run / "distill-sweep") / name
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        final = run_stages(staged_config(plan, args.run / "world", out, args.seed), resume=False)
        if not (final / "umr_recipe.json").is_file():
            print(f"{name}: skipped (its teacher is no better than the student); hard stage {before}", flush=True)
            continue
        local = evaluate_model(str(final), args.run / "world", out, "distilled")["average"]
        took = time.perf_counter() - start
        print(f"{name}: local {local} (hard stage {before}, {local - before:+.2f}) in {took:.0f} s", flush=True)


if __name__ == "__main__":
    main()
