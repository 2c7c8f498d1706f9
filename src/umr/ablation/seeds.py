"""`umr ablate --seeds 0 1 4`: the ablation once per world seed (OUT/seed-S), then every row and each arm's
effect as mean ± sample sd over the seeds, with the effect's sign per seed (OUT/seeds.json, OUT/seeds.md).

One world's table moves by several points from seed to seed, so an arm's effect is taken per seed (paired: the
arm and its reference share the world, the base and the data order) before it is averaged.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from umr.ablation.config import AblationConfig
from umr.ablation.measures import Row
from umr.eval.spread import aggregate, sign_note

#: effect key → (what it measures, the arm's row key, its reference's row key): effect = arm − reference
EFFECTS: dict[str, tuple[str, str, str]] = {
    "effect:a:wrong": ("(a) modality-aware − random negatives: global wrong-modality % (lower is better)",
                       "a:wrong:modality-aware", "a:wrong:random"),
    "effect:a:global": ("(a) modality-aware − random negatives: global mean R@5",
                        "a:global:modality-aware", "a:global:random"),
    "effect:b:hard": ("(b) hard negatives − in-batch only: mean R@5", "b:hard", "b:inbatch"),
    "effect:b:hard-fn": ("(b) hard negatives with the FN filter − in-batch only: mean R@5", "b:hard-fn", "b:inbatch"),
    "effect:b:fn": ("(b) the FN filter: hard with − hard without, mean R@5", "b:hard-fn", "b:hard"),
    "effect:c:rerank": ("(c) re-ranking: composed R@5 after − before", "c:after", "c:before"),
    "effect:d:distill": ("(d) distillation: mean R@5 after − before", "d:after", "d:before"),
    "effect:e:text": ("(e) continual text FT: text task R@5 after − before", "e:text:after", "e:text:before"),
    "effect:e:mm": ("(e) continual text FT: multimodal R@5 after − before", "e:mm:after", "e:mm:before"),
}


def seed_measures(rows: list[Row]) -> tuple[dict[str, float], dict[str, str]]:
    """One seed's rows by key, plus every effect whose two rows are there; and each key's label."""
    values = {r.key: r.value for r in rows if r.key}
    labels = {r.key: f"({r.part}) {r.measure}" for r in rows if r.key}
    for key, (what, arm, ref) in EFFECTS.items():
        if arm in values and ref in values:
            values[key], labels[key] = values[arm] - values[ref], what
    return values, labels


def run_seeds(cfg: AblationConfig, seeds: list[int], console: Any = None) -> Path:
    """Run (or resume) the ablation for every seed under cfg.out/seed-S; write and return OUT/seeds.md."""
    from umr.ablation.run import run_ablation

    per_seed: dict[int, dict[str, float]] = {}
    labels: dict[str, str] = {}
    for seed in seeds:
        rows = run_ablation(replace(cfg, out=Path(cfg.out) / f"seed-{seed}", seed=seed), console)
        per_seed[seed], seed_labels = seed_measures(rows)
        labels.update(seed_labels)
    return write_seeds_table(per_seed, labels, cfg)


def write_seeds_table(per_seed: dict[int, dict[str, float]], labels: dict[str, str], cfg: AblationConfig) -> Path:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(per_seed)
    doc = {"config": {**cfg.to_dict(), "seed": None}, "seeds": list(per_seed),
           "per_seed": {str(s): m for s, m in per_seed.items()},
           "aggregate": {k: {**row, "values": {str(s): v for s, v in row["values"].items()}, "label": labels[k]}
                         for k, row in agg.items()}}
    (out / "seeds.json").write_text(json.dumps(doc, indent=1) + "\n")
    base = cfg.base or f"a base trained here for {cfg.base_steps} steps"
    lines = [f"# umr ablate over {len(per_seed)} seeds ({', '.join(map(str, per_seed))})", "",
             f"World size {cfg.size}; every arm starts from {base} and trains {cfg.steps} steps of {cfg.batch_size}. "
             "Each seed is its own world, data order and initialisation (OUT/seed-N/ablation.md). mean ± sd: the "
             "sample sd (n − 1) over seeds; an effect is taken per seed, so its sd is that of the paired "
             "difference. Values in %.", "",
             "| measure | mean ± sd | per seed | sign |", "|---|---:|---|---|"]
    for key, row in agg.items():
        per = ", ".join(f"{s}: {v:.1f}" for s, v in row["values"].items())
        sign = sign_note(row) if key.startswith("effect:") else ""
        lines.append(f"| {labels[key]} | {row['mean']:.1f} ± {row['sd']:.1f} | {per} | {sign} |")
    path = out / "seeds.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
