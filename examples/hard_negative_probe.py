"""Issue 20 probe: why do mined hard negatives lose to in-batch negatives on the world? One stage per arm.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python examples/hard_negative_probe.py --seed 2 \
        inbatch-task@200 hard-task@200 [--out runs/hn-probe]

Each arm is `name[@steps]` (default 60 steps): one stage of 32 a step at LR 1e-4 from the pretrained base
`tiny:u-marvel@64x2+pre`, on world `--seed` (size small; 2 and 3 are the validation worlds). It follows the
`umr ablate` protocol: fixed τ 0.05 and full fine-tuning, evaluated by mean R@5 over the local pools of the test
split. Each run prints one JSON line and appends it to OUT/results.jsonl; every measured line is in
docs/quality.md §5, §8 and §9.

The negatives are mined with the base model over each task's local pool, two per query:
- hard: ranks 3–4 of the task's modality (fn_skip 2, as the demo);
- semi: two drawn at random from ranks 3–50;
- randlocal: two drawn uniformly from the local pool.

- near / far (session 10): two of ranks 3–50, those sharing the most / the fewest of the positive's attributes
  (the world's world_meta.jsonl; exact copies of the positive's attributes excluded); visible / invisible
  (session 11): two of ranks 3–50 that differ from the positive in an attribute the base's vision tokens carry /
  only in shape or size (an image-only negative; see VISIBLE).
- distinct<T> / twin<T> (session 11): two of ranks 3–50, the best-ranked two whose document embedding (by the
  base) has cosine < T with the positive's / the two closest to it, e.g. `distinct0.9-task@200`.

The batches are task batches (`-task` arms, as in the demo) or mixed batches (all other arms). Variants:
- `-noshare`: a query sees only its own negatives;
- `-detach`: no gradient flows through the negatives' embeddings;
- `-w<W>` (after the arm's name, e.g. `hard-task-w0.3@200`): each hard negative counts as W negatives in InfoNCE
  (`hard_negative_weight`: log W is added to its logit; session 10);
- `take1`: one hard negative;
- `mass` (not a training arm): where InfoNCE's softmax mass goes at the base with the hard pairs (softmax_mass);
- `-s<N>` (last, e.g. `hard-task-s1@200`): training seed N (data order) instead of the world's seed, to measure
  what the training's own randomness moves.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path
from typing import Any

import umr.train.gradcache as gradcache
from umr.ablation.config import AblationConfig
from umr.ablation.measures import mean_recall
from umr.ablation.workspace import Workspace
from umr.mine.negatives import MineOptions
from umr.models.baselines import RandomEmbedder
from umr.models.registry import load_embedder
from umr.train.data import read_pairs

BASE = "tiny:u-marvel@64x2+pre"
_LOSS_ON = gradcache._loss_on


def _detached_loss_on(reps: list[Any], k: int, loss_fn: Any) -> Any:
    return _LOSS_ON([reps[0], reps[1], reps[2].detach()] if k else reps, k, loss_fn)


#: attributes a linear probe reads from the base's vision tokens at ≥ 78 % on a validation world; shape (25 %, chance
#: 14 %) and size (65 %, majority 36 %) are barely there (examples/vision_attribute_probe.py, docs/quality.md §9)
VISIBLE = ("colour", "pattern", "position", "background")


def by_attributes(ws: Workspace, top48: str) -> dict[str, str]:
    """Pairs files that pick two of each query's ranks 3–50 by the positive's attributes (ties: the better rank
    first): near / far share the most / the fewest of them; an invisible negative is an image only that differs
    from the positive in none of VISIBLE (a text names every attribute), a visible one is any other. Exact copies
    of the positive's attributes are excluded."""
    meta = {}
    for line in (ws.world / "world_meta.jsonl").open():
        row = json.loads(line)
        if row.get("kind") == "did" and row.get("attrs"):
            meta[row["id"]] = row["attrs"]
    names = ("near", "far", "visible", "invisible")
    paths = {name: ws.out / f"{name}.jsonl" for name in names}
    if all(p.is_file() for p in paths.values()):
        return {k: str(v) for k, v in paths.items()}
    files = {name: paths[name].open("w") for name in names}
    for line in Path(top48).read_text().splitlines():
        row = json.loads(line)
        attrs, negs = meta.get(row["positive"]["id"], {}), row["negatives"]
        differ = [{k for k, v in attrs.items() if meta.get(n["id"], {}).get(k) != v} for n in negs]
        kept = [i for i, d in enumerate(differ) if d] or list(range(min(2, len(negs))))
        seen = [i for i in kept if negs[i]["modality"] != "image" or differ[i] & set(VISIBLE)]  # text names all
        unseen = [i for i in kept if i not in seen]
        picks = {"near": sorted(kept, key=lambda i: (len(differ[i]), i))[:2],
                 "far": sorted(kept, key=lambda i: (-len(differ[i]), i))[:2],
                 "visible": seen[:2] or kept[:2], "invisible": unseen[:2] or kept[:2]}
        for name, fh in files.items():
            fh.write(json.dumps({**row, "negatives": [negs[i] for i in picks[name]]}) + "\n")
    for fh in files.values():
        fh.close()
    return {k: str(v) for k, v in paths.items()}


def by_document_cosine(ws: Workspace, top48: str, emb: Any, threshold: float) -> dict[str, str]:
    """Pairs files that pick two of each query's ranks 3–50 by how close the base puts them to the positive
    (cosine of the two document embeddings): `distinct` takes the best-ranked two below `threshold` (else the two
    farthest), `twin` the two closest."""
    paths = {name: ws.out / f"{name}{threshold:g}.jsonl" for name in ("distinct", "twin")}
    if all(p.is_file() for p in paths.values()):
        return {k: str(v) for k, v in paths.items()}
    pairs = read_pairs(top48)
    docs = {d.id: d for p in pairs for d in [p.positive, *p.negatives]}
    ids = list(docs)
    vectors = dict(zip(ids, emb.encode_document([docs[i] for i in ids])))
    rows = [json.loads(line) for line in Path(top48).read_text().splitlines()]
    with paths["distinct"].open("w") as distinct, paths["twin"].open("w") as twin:
        for row, pair in zip(rows, pairs):
            cos = [float(vectors[n.id] @ vectors[pair.positive.id]) for n in pair.negatives]
            below = [i for i, c in enumerate(cos) if c < threshold]
            far = below[:2] if len(below) >= 2 else sorted(range(len(cos)), key=lambda i: cos[i])[:2]
            close = sorted(range(len(cos)), key=lambda i: -cos[i])[:2]
            distinct.write(json.dumps({**row, "negatives": [row["negatives"][i] for i in far]}) + "\n")
            twin.write(json.dumps({**row, "negatives": [row["negatives"][i] for i in close]}) + "\n")
    return {k: str(v) for k, v in paths.items()}


def softmax_mass(pairs_path: str, emb: Any, tau: float = 0.05, batches_per_set: int = 3) -> dict[str, Any]:
    """Where InfoNCE's softmax mass (each column's weight in the query's gradient) goes at the base, in task
    batches of 32 with shared negatives: the positive, the other positives (in-batch), the query's own two hard
    negatives and the other queries' hard negatives; with the hard columns weighted 1 and 0.3 (log w added). Also
    how close each hard negative's document embedding is to its positive's."""
    import numpy as np

    rows = [json.loads(line) for line in Path(pairs_path).read_text().splitlines()]
    by_set: dict[str, list[Any]] = {}
    for row, pair in zip(rows, read_pairs(pairs_path)):
        by_set.setdefault(row["set"], []).append(pair)
    shares: dict[str, list[np.ndarray]] = {"in-batch only": [], "hard w1": [], "hard w0.3": []}
    twins: list[float] = []  # cosine of each hard negative's document embedding with its positive's
    for group in by_set.values():
        random.Random(0).shuffle(group)
        for at in range(0, min(len(group), 32 * batches_per_set) - 31, 32):
            batch, n = group[at:at + 32], 32
            q = emb.encode_query([p.query for p in batch])
            cols = np.concatenate([emb.encode_document([p.positive for p in batch]),
                                   emb.encode_document([c for p in batch for c in p.negatives[:2]])])
            twins += [float(cols[n + j] @ cols[j // 2]) for j in range(cols.shape[0] - n)]
            own = np.zeros((n, cols.shape[0]), bool)
            own[np.arange(n), np.arange(n)] = True
            mine = np.zeros_like(own)
            for i in range(n):
                mine[i, n + 2 * i:n + 2 * i + 2] = True
            for name, w in (("in-batch only", None), ("hard w1", 1.0), ("hard w0.3", 0.3)):
                logits = q @ (cols[:n] if w is None else cols).T / tau
                if w is not None:
                    logits[:, n:] += np.log(w)
                prob = np.exp(logits - logits.max(1, keepdims=True))
                prob /= prob.sum(1, keepdims=True)
                pad = np.zeros((n, cols.shape[0] - prob.shape[1]))
                prob = np.concatenate([prob, pad], 1)
                positive, own_hard = prob[own], prob[mine].reshape(n, 2).sum(1)
                shares[name].append(np.stack([positive, prob[:, :n].sum(1) - positive, own_hard,
                                              prob[:, n:].sum(1) - own_hard], 1))
    keys = ("positive", "other positives", "own hard", "others' hard")
    out: dict[str, Any] = {name: dict(zip(keys, np.round(np.concatenate(v).mean(0), 3).tolist()))
                           for name, v in shares.items()}
    out["cos(hard negative, positive), p10 / p50 / p90"] = np.round(np.percentile(twins, [10, 50, 90]), 3).tolist()
    return out


def arm_data(ws: Workspace, seed: int, thresholds: set[float],
             base: str = BASE) -> dict[str, tuple[str, int, dict[str, Any]]]:
    """arm name → (pairs file, negatives per query, TrainConfig overrides); `base` mines."""
    emb = load_embedder(base, device="cpu")
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
    by_cos = {t: by_document_cosine(ws, top48, emb, t) for t in sorted(thresholds)}
    return {**{f"{kind}{t:g}-task": (files[kind], 2, task) for t, files in by_cos.items() for kind in files},
            "inbatch": (inbatch, 0, {}), "hard": (hard, 2, {}), "hard-noshare": (hard, 2, noshare),
            "take1-noshare": (take1, 1, noshare), "inbatch-task": (inbatch, 0, task),
            "hard-task": (hard, 2, task), "hard-task-noshare": (hard, 2, {**task, **noshare}),
            "randlocal-task": (randlocal, 2, task), "semi-task": (str(semi), 2, task),
            "near-task": (attrs["near"], 2, task), "far-task": (attrs["far"], 2, task),
            "visible-task": (attrs["visible"], 2, task), "invisible-task": (attrs["invisible"], 2, task)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arms", nargs="+", help="name[-w<W>][-detach][-s<N>][@steps]")
    ap.add_argument("--seed", type=int, default=2, help="world seed (validation: 2, 3)")
    ap.add_argument("--base", default=BASE, help="the start model, which also mines (a folder for another base; "
                    "use another --out, since the mined lists are kept there)")
    ap.add_argument("--out", type=Path, default=Path("runs/hn-probe"))
    args = ap.parse_args()
    cfg = AblationConfig(out=args.out / f"seed-{args.seed}", size="small", seed=args.seed, base=args.base, steps=60,
                         batch_size=32, lr=1e-4)
    ws = Workspace(cfg)
    thresholds = {float(m.group(1)) for arm in args.arms if (m := re.match(r"(?:distinct|twin)([0-9.]+)-", arm))}
    data = arm_data(ws, args.seed, thresholds, args.base)
    for arm in args.arms:
        if arm == "mass":
            print(json.dumps({"seed": args.seed, "softmax_mass": softmax_mass(data["hard"][0],
                                                                                load_embedder(args.base))}))
            continue
        name, _, steps = arm.partition("@")
        seed = re.search(r"-s(\d+)$", name)
        name = name.removesuffix(seed.group(0)) if seed else name
        detach = name.endswith("-detach")
        gradcache._loss_on = _detached_loss_on if detach else _LOSS_ON
        name = name.removesuffix("-detach")
        name, _, weight = name.partition("-w")
        pairs, k, overrides = data[name]
        if weight:
            overrides = {**overrides, "hard_negative_weight": float(weight)}
        if seed:
            overrides = {**overrides, "seed": int(seed.group(1))}
        model = ws.train(arm, args.base, pairs, int(steps or cfg.steps), num_negatives=k, **overrides)
        result = {"seed": args.seed, "arm": arm, "r5": round(mean_recall(ws.evaluate(arm, model)), 2)}
        if args.base != BASE:
            result["base"] = args.base
        print(json.dumps(result), flush=True)
        with (args.out / "results.jsonl").open("a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
