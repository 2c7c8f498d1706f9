"""Multi-seed demo results: every measure of `run_demo` as mean ± sd over world seeds (`umr demo --seeds`).

One seed's numbers on the tiny CPU budget move by several points from world to world, so a single-seed table
cannot tell a real effect from noise; this module turns N summaries into per-measure means, sample sds and sign
counts, written as OUT/seeds.json and OUT/seeds.md.

    per_seed = {s: seed_measures(run_demo(out / f"seed-{s}", seed=s)) for s in (0, 1, 4)}
    write_seeds_report(per_seed, aggregate(per_seed), out)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from umr.demo.summary import MAIN, distill_verdict, model_columns
from umr.eval.spread import aggregate, sign_note

__all__ = ["aggregate", "label", "seed_measures", "seeds_table", "sign_note", "write_seeds_report"]

_FIXED_LABELS = {
    "stage:instruct": "chain after the instruction stage (local mean)",
    "stage:hard": "chain after the hard-negative stage (local mean)",
    "stage:final": f"chain's final model = {MAIN} (local mean; the hard stage's where distillation was skipped)",
    "r1:before": f"{MAIN} mean R@1, retrieval only",
    "r1:after": f"{MAIN} mean R@1, top N re-ranked",
    "mrr10:before": f"{MAIN} mean MRR@10, retrieval only",
    "mrr10:after": f"{MAIN} mean MRR@10, top N re-ranked",
    "effect:hard": "hard negatives: stage hard − stage instruct (local mean)",
    "effect:distill": "distillation: stage final − stage hard (local mean; 0 where it was skipped)",
    "teacher:gain": "distillation teacher's top-1 − the student's own on the teacher lists (train split, points)",
    "distill:skipped": "distillation skipped: its teacher was not better than the student (1 = skipped)",
    "effect:rerank_r1": "re-ranking: R@1 after − before",
    "effect:rerank_mrr10": "re-ranking: MRR@10 after − before",
    "effect:staged_vs_plain_local": f"staged recipe: {MAIN} − plain (local mean)",
    "effect:staged_vs_plain_global": f"staged recipe: {MAIN} − plain (global mean)",
    "ratio:global_local": f"{MAIN}: global mean / local mean",
    "ratio:global_samemod": f"{MAIN}: global mean / global mean with the task's modality only (1 = no bias cost)",
    "effect:global_vs_best_baseline": f"{MAIN} − best other model (global mean)",
}
_PREFIX_LABELS = {
    "local": "{}: mean headline recall, local pools",
    "global": "{}: mean headline recall, global pool",
    "wrong": "{}: wrong-modality share of the global top-10 (%)",
    "samemod": "{}: mean headline recall, global pool, the task's modality only",
}


def label(key: str) -> str:
    """One line a reader of seeds.md understands without the code."""
    if key in _FIXED_LABELS:
        return _FIXED_LABELS[key]
    kind, _, name = key.partition(":")
    return _PREFIX_LABELS[kind].format(name) if kind in _PREFIX_LABELS else key


def seed_measures(summary: dict[str, Any]) -> dict[str, float]:
    """The numbers of one `run_demo` summary by stable keys; a key whose inputs are missing is left out (a plan
    without the re-ranker or a global pool still aggregates what it has)."""
    ev, glob = summary["eval"], summary.get("global") or {}
    m: dict[str, float] = {}
    names = model_columns(summary)
    for name in names:
        m[f"local:{name}"] = float(ev[name]["average"])
        g = glob.get(name)
        if g:
            m[f"global:{name}"] = float(g["average"])
            if g.get("wrong_modality") is not None:
                m[f"wrong:{name}"] = float(g["wrong_modality"])
            if g.get("same_modality"):
                m[f"samemod:{name}"] = float(g["same_modality"]["average"])
    for stage in ("instruct", "hard"):
        if f"stage:{stage}" in ev:
            m[f"stage:{stage}"] = float(ev[f"stage:{stage}"]["average"])
    if MAIN in ev:
        m["stage:final"] = float(ev[MAIN]["average"])
    verdict = distill_verdict(summary)
    if verdict:
        m["teacher:gain"] = float(verdict["teacher_r1"]) - float(verdict["student_r1"])
        m["distill:skipped"] = float(bool(verdict["skipped"]))
    rr = ev.get(f"{MAIN}+rerank")
    if rr and MAIN in ev:
        for field in ("r1", "mrr10"):
            # results kept from runs before these fields existed lack them
            if ev[MAIN].get(field) is not None and rr.get(field) is not None:
                m[f"{field}:before"], m[f"{field}:after"] = float(ev[MAIN][field]), float(rr[field])

    # Effects are taken per seed, so their sd across seeds is the sd of the paired difference: the world-to-world
    # spread that both sides share cancels, which the two sds side by side would hide.
    def diff(key: str, a: str, b: str) -> None:
        if a in m and b in m:
            m[key] = m[a] - m[b]

    diff("effect:hard", "stage:hard", "stage:instruct")
    diff("effect:distill", "stage:final", "stage:hard")
    diff("effect:rerank_r1", "r1:after", "r1:before")
    diff("effect:rerank_mrr10", "mrr10:after", "mrr10:before")
    diff("effect:staged_vs_plain_local", f"local:{MAIN}", "local:plain")
    diff("effect:staged_vs_plain_global", f"global:{MAIN}", "global:plain")
    if m.get(f"local:{MAIN}") and f"global:{MAIN}" in m:  # a zero local mean has no ratio
        m["ratio:global_local"] = m[f"global:{MAIN}"] / m[f"local:{MAIN}"]
    if m.get(f"samemod:{MAIN}") and f"global:{MAIN}" in m:
        m["ratio:global_samemod"] = m[f"global:{MAIN}"] / m[f"samemod:{MAIN}"]
    others = [m[f"global:{n}"] for n in names if n != MAIN and f"global:{n}" in m]
    if f"global:{MAIN}" in m and others:
        m["effect:global_vs_best_baseline"] = m[f"global:{MAIN}"] - max(others)
    return m


def _fmt(key: str, v: float) -> str:
    return f"{v:.2f}" if key.startswith("ratio:") else f"{v:.1f}"


def _cells(key: str, row: dict[str, Any]) -> tuple[str, str, str]:
    mean_sd = f"{_fmt(key, row['mean'])} ± {_fmt(key, row['sd'])}"
    values = ", ".join(f"{s}: {_fmt(key, v)}" for s, v in row["values"].items())
    return mean_sd, values, sign_note(row) if key.startswith("effect:") else ""


def seeds_table(agg: dict[str, dict[str, Any]]) -> Table:
    n = next(iter(agg.values()))["n"] if agg else 0
    table = Table(title=f"umr demo over {n} seeds: mean ± sample sd (effects: sd of the per-seed difference)")
    for col, justify in (("measure", "left"), ("key", "left"), ("mean ± sd", "right"), ("per seed", "left"),
                         ("sign", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for key, row in agg.items():
        table.add_row(label(key), key, *_cells(key, row))
    return table


def write_seeds_report(per_seed: dict[int, dict[str, float]], agg: dict[str, dict[str, Any]],
                       out_dir: str | Path) -> Path:
    """OUT/seeds.json (every seed's numbers and the aggregate) and OUT/seeds.md; returns the .md path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(per_seed)
    doc = {"seeds": seeds, "per_seed": {str(s): m for s, m in per_seed.items()},
           "aggregate": {k: {**row, "values": {str(s): v for s, v in row["values"].items()}, "label": label(k)}
                         for k, row in agg.items()}}
    (out / "seeds.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [f"# umr demo over {len(seeds)} seeds ({', '.join(map(str, seeds))})", "",
             "Each seed is a whole demo: its own world, training and evaluation (OUT/seed-N). mean ± sd is the mean "
             "and the sample sd (n − 1) over seeds; an effect is computed per seed, so its sd is the sd of the "
             "per-seed difference. Recall in %, mean headline recall over the 16 test sets.", "",
             "| measure | mean ± sd | per seed | sign |", "|---|---:|---|---|"]
    for key, row in agg.items():
        mean_sd, values, sign = _cells(key, row)
        lines.append(f"| {label(key)} (`{key}`) | {mean_sd} | {values} | {sign} |")
    path = out / "seeds.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
