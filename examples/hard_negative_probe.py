"""Issue 20 probe: why do mined hard negatives lose to in-batch negatives on the world? One stage per arm.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/hard_negative_probe.py --seed 2 \
        inbatch-task@200 hard-task@200 [--out runs/hn-probe]

Each arm is `name[@steps]` (default 60 steps): one stage of 32 a step at LR 1e-4 from the pretrained base
`tiny:u-marvel@64x2+pre`, on world `--seed` (size small; 2 and 3 are the validation worlds). It follows the
`umr ablate` protocol: fixed τ 0.05 and full fine-tuning, evaluated by mean R@5 over the local pools of the test
split. Each run prints one JSON line and appends it to OUT/results.jsonl; every measured line is in
docs/quality.md §5.

The negatives are mined with the base model over each task's local pool, two per query:
- hard: ranks 3–4 of the task's modality (fn_skip 2, as the demo);
- semi: two drawn at random from ranks 3–50;
- randlocal: two drawn uniformly from the local pool.

- near / far (session 10): two of ranks 3–50, those sharing the most / the fewest of the positive's attributes
  (the world's world_meta.jsonl; exact copies of the positive's attributes excluded).

The batches are task batches (`-task` arms, as in the demo) or mixed batches (all other arms). Variants:
- `-noshare`: a query sees only its own negatives;
- `-detach`: no gradient flows through the negatives' embeddings;
- `-w<W>` (after the arm's name, e.g. `hard-task-w0.3@200`): each hard negative counts as W negatives in InfoNCE
  (`hard_negative_weight`: log W is added to its logit; session 10);
- `take1`: one hard negative.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import umr.train.gradcache as gradcache
from umr.ablation.config import AblationConfig
from umr.ablation.measures import mean_recall
from umr.ablation.workspace import Workspace
from umr.mine.negatives import MineOptions
from umr.models.baselines import RandomEmbedder
from umr.models.registry import load_embedder

BASE = "tiny:u-marvel@64x2+pre"
_LOSS_ON = gradcache._loss_on


def _detached_loss_on(reps: list[Any], k: int, loss_fn: Any) -> Any:
    return _LOSS_ON([reps[0], reps[1], reps[2].detach()] if k else reps, k, loss_fn)


def by_attributes(ws: Workspace, top48: str) -> dict[str, str]:
    """near / far pairs files: of each query's ranks 3–50, the two sharing the most / the fewest of its positive's
    attributes (ties: the better rank first)."""
    meta = {}
    for line in (ws.world / "world_meta.jsonl").open():
        row = json.loads(line)
        if row.get("kind") == "did" and row.get("attrs"):
            meta[row["id"]] = row["attrs"]
    paths = {name: ws.out / f"{name}.jsonl" for name in ("near", "far")}
    if all(p.is_file() for p in paths.values()):
        return {k: str(v) for k, v in paths.items()}
    with paths["near"].open("w") as near, paths["far"].open("w") as far:
        for line in Path(top48).read_text().splitlines():
            row = json.loads(line)
            attrs, negs = meta.get(row["positive"]["id"], {}), row["negatives"]
            shared = [(sum(meta.get(n["id"], {}).get(k) == v for k, v in attrs.items()), i)
                      for i, n in enumerate(negs)]
            shared = [x for x in shared if x[0] < len(attrs)] or shared[:2]
            most = sorted(shared, key=lambda x: (-x[0], x[1]))[:2]
            fewest = sorted(shared, key=lambda x: (x[0], x[1]))[:2]
            near.write(json.dumps({**row, "negatives": [negs[i] for _, i in most]}) + "\n")
            far.write(json.dumps({**row, "negatives": [negs[i] for _, i in fewest]}) + "\n")
    return {k: str(v) for k, v in paths.items()}


def arm_data(ws: Workspace, seed: int) -> dict[str, tuple[str, int, dict[str, Any]]]:
    """arm name → (pairs file, negatives per query, TrainConfig overrides)."""
    emb = load_embedder(BASE, device="cpu")
    inbatch = ws.pairs("random-neg", RandomEmbedder(), "random", pool="global",
                       opts=MineOptions(take=2, strategy="random", seed=seed))
    randlocal = ws.pairs("random-local", RandomEmbedder(), "random", pool="local",
                         opts=MineOptions(take=2, strategy="random", seed=seed))
    hard = ws.pairs("hard-skip2", emb, "base", pool="local", opts=MineOptions(top=50, take=2, fn_skip=2))
    take1 = ws.pairs("hard-take1", emb, "base", pool="local", opts=MineOptions(top=50, take=1, fn_skip=2))
    top48 = ws.pairs("hard-skip2-48", emb, "base", pool="local", opts=MineOptions(top=50, take=48, fn_skip=2))
    semi = ws.out / "semi.jsonl"
    if not semi.is_file():
        rng = random.Random(seed)
        with semi.open("w") as fh:
            for line in Path(top48).read_text().splitlines():
                row = json.loads(line)
                row["negatives"] = rng.sample(row["negatives"], min(2, len(row["negatives"])))
                fh.write(json.dumps(row) + "\n")
    task, noshare = {"batch_by": "task"}, {"share_negatives": False}
    attrs = by_attributes(ws, top48)
    return {"inbatch": (inbatch, 0, {}), "hard": (hard, 2, {}), "hard-noshare": (hard, 2, noshare),
            "take1-noshare": (take1, 1, noshare), "inbatch-task": (inbatch, 0, task),
            "hard-task": (hard, 2, task), "hard-task-noshare": (hard, 2, {**task, **noshare}),
            "randlocal-task": (randlocal, 2, task), "semi-task": (str(semi), 2, task),
            "near-task": (attrs["near"], 2, task), "far-task": (attrs["far"], 2, task)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arms", nargs="+", help="name[-w<W>][-detach][@steps]")
    ap.add_argument("--seed", type=int, default=2, help="world seed (validation: 2, 3)")
    ap.add_argument("--out", type=Path, default=Path("runs/hn-probe"))
    args = ap.parse_args()
    cfg = AblationConfig(out=args.out / f"seed-{args.seed}", size="small", seed=args.seed, base=BASE, steps=60,
                         batch_size=32, lr=1e-4)
    ws = Workspace(cfg)
    data = arm_data(ws, args.seed)
    for arm in args.arms:
        name, _, steps = arm.partition("@")
        detach = name.endswith("-detach")
        gradcache._loss_on = _detached_loss_on if detach else _LOSS_ON
        name = name.removesuffix("-detach")
        name, _, weight = name.partition("-w")
        pairs, k, overrides = data[name]
        if weight:
            overrides = {**overrides, "hard_negative_weight": float(weight)}
        model = ws.train(arm, BASE, pairs, int(steps or cfg.steps), num_negatives=k, **overrides)
        result = {"seed": args.seed, "arm": arm, "r5": round(mean_recall(ws.evaluate(arm, model)), 2)}
        print(json.dumps(result), flush=True)
        with (args.out / "results.jsonl").open("a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
