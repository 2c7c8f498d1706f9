"""Mean ± sd over world seeds of per-seed measures, with each effect's sign count (`umr demo --seeds`,
`umr ablate --seeds`).

    per_seed = {0: {"effect:x": 1.5, ...}, 1: {...}, 4: {...}}
    agg = aggregate(per_seed)          # key → mean, sample sd, values by seed, count > 0, n
    sign_note(agg["effect:x"])         # "positive on 2/3 seeds"
"""

from __future__ import annotations

import statistics
from typing import Any


def aggregate(per_seed: dict[int, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Mean, sample sd (n − 1; 0.0 for one seed), the values by seed, how many are > 0, and n, for every key
    that every seed has: a mean over a subset of the seeds would not be comparable with the other rows."""
    if not per_seed:
        return {}
    seeds = list(per_seed)
    first = per_seed[seeds[0]]
    agg: dict[str, dict[str, Any]] = {}
    for key in first:  # the first seed's order: the order seed_measures writes, related rows together
        if not all(key in per_seed[s] for s in seeds):
            continue
        values = {s: float(per_seed[s][key]) for s in seeds}
        vals = list(values.values())
        agg[key] = {"mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                    "values": values, "positive": sum(v > 0 for v in vals), "n": len(vals)}
    return agg


def sign_note(row: dict[str, Any]) -> str:
    """The sign of an effect across seeds, with the count, so '+0.4 ± 2.0' reads as noise when it flips."""
    n, pos = row["n"], row["positive"]
    neg = sum(v < 0 for v in row["values"].values())
    zero = f", zero on {n - pos - neg}" if 0 < n - pos - neg < n else ""
    if pos > neg:
        return f"positive on {pos}/{n} seeds{zero}"
    if neg > pos:
        return f"negative on {neg}/{n} seeds{zero}"
    return "zero on every seed" if pos == 0 else "mixed"
