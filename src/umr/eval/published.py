"""Published M-BEIR numbers, printed beside ours by `umr eval --compare published` on real M-BEIR.

Only averages over the 16 sets are kept for now, each with the paper and table it comes from (as summarised in
design.md §3). Per-task figures were not transcribed: we could not check them against the papers' tables here,
and a wrong per-task number is worse than none. Add them per model as {"visualnews_task0": 43.3, …} under
"local"/"global" with the same source, and the comparison table shows them automatically.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Published:
    model: str
    source: str
    average: dict[str, float]  # pool ("local" | "global") → 16-set average of the headline recall, in %
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)  # pool → set name → %


PUBLISHED: tuple[Published, ...] = (
    Published("UniIR CLIP-SF (L)", "Wei et al. 2023, UniIR (arXiv:2311.17136), M-BEIR / M-BEIR_local tables",
              {"local": 50.6, "global": 48.9}),
    Published("MM-Embed", "Lin et al. 2024, MM-Embed (arXiv:2411.02571), M-BEIR results table",
              {"global": 52.7}),
    Published("LamRA-Ret (7B)", "LamRA (CVPR 2025), LamRA-Ret M-BEIR results table",
              {"local": 56.6, "global": 54.9}),
    Published("U-MARVEL (7B)", "U-MARVEL (2025), M-BEIR results table", {"local": 63.2, "global": 60.7}),
    Published("U-MARVEL (7B) + re-ranker", "U-MARVEL (2025), M-BEIR results table",
              {"local": 64.8, "global": 61.8}),
)


def published_for(pool: str) -> list[Published]:
    """Entries that report a number for this pool."""
    return [p for p in PUBLISHED if pool in p.average]
