"""Published M-BEIR numbers, printed beside ours by `umr eval --compare published` on real M-BEIR.

Per-set headline recall (R@10 for the Fashion200K and FashionIQ sets, R@5 elsewhere), in the 16-set order of
`umr.eval.mbeir.MBEIR_16`, transcribed from one source: the comparison tables of U-MARVEL (Li et al., arXiv
2507.14902), Table 7 (local pools) and Table 8 (global pool), as the authors publish them in their repository
(GitHub chaxjli/U-MARVEL, figures/local_pool.png and figures/global_pool.png). Its rows for UniIR, MM-Embed and
LamRA restate those papers' tables; how far each was checked against its own paper is in the row's `checked`.
Each row's cells average to the mean the table prints, to its rounding (|difference| ≤ 0.05), which
tests/eval/test_published.py checks so that a mistyped cell shows up; the one exception is U-MARVEL+'s global
row, whose cells average 61.725 where U-MARVEL prints 61.8 (its `note` says so; the cells are as printed).

`checkpoint` names the released model a row's number was measured with, so that a newcomer who evaluates that
checkpoint (`umr eval --model <checkpoint>`) knows which row to compare with. No reachable source gives GME's
16-set M-BEIR numbers (GME reports UMRB), so GME has no row: its released checkpoints cannot be checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from umr.eval.mbeir import MBEIR_16

_UNREACHABLE = "the paper's own tables could not be opened from the machine this was written on"
_SOURCE = "U-MARVEL (arXiv 2507.14902) Tables 7/8; GitHub chaxjli/U-MARVEL figures/{local,global}_pool.png"


@dataclass(frozen=True)
class Published:
    model: str
    source: str
    average: dict[str, float]  # pool ("local" | "global") → 16-set average of the headline recall, in %
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)  # pool → set name → %
    checkpoint: str | None = None  # the released model the numbers belong to (hub id), None when not released
    checked: str = ""  # how the row was checked against its own paper, beyond U-MARVEL's restatement
    note: str = ""  # a known oddity of the printed table


def _row(model: str, local: tuple[float, ...] | None, global_: tuple[float, ...] | None,
         avg_local: float | None, avg_global: float | None, **about: str | None) -> Published:
    """One model's 16 numbers per pool, in MBEIR_16 order; `about`: checkpoint, checked, note."""
    per_task, average = {}, {}
    for pool, values, avg in (("local", local, avg_local), ("global", global_, avg_global)):
        if values is not None and avg is not None:
            if len(values) != len(MBEIR_16):
                raise ValueError(f"{model} {pool}: {len(values)} numbers for {len(MBEIR_16)} sets")
            per_task[pool] = dict(zip(MBEIR_16, values))
            average[pool] = avg
    return Published(model, _SOURCE, average, per_task, **about)  # type: ignore[arg-type]


PUBLISHED: tuple[Published, ...] = (
    _row("UniIR BLIP-FF (L)",
         (23.4, 79.7, 26.1, 80.0, 50.9, 79.8, 22.8, 89.9, 28.9, 33.0, 41.0, 22.4, 29.2, 52.2, 55.8, 33.0),
         (23.0, 75.6, 25.4, 79.5, 50.3, 79.7, 21.1, 88.8, 27.6, 33.0, 38.7, 19.7, 28.5, 51.4, 57.8, 27.7),
         46.8, 45.5, checkpoint="TIGER-Lab/UniIR (checkpoint/BLIP_FF/blip_ff_large.pth)",
         checked=f"not re-checked: {_UNREACHABLE}"),
    _row("UniIR CLIP-SF (L)",
         (42.6, 81.1, 18.0, 84.7, 59.4, 78.7, 43.1, 92.3, 18.3, 32.0, 45.5, 27.9, 24.4, 44.6, 67.6, 48.9),
         (42.6, 77.9, 17.8, 84.7, 59.4, 78.8, 42.8, 92.3, 17.9, 32.0, 39.2, 24.0, 24.3, 43.9, 60.2, 44.6),
         50.6, 48.9, checkpoint="TIGER-Lab/UniIR (checkpoint/CLIP_SF/clip_sf_large.pth)",
         checked="local average 50.6 and MSCOCO 81.1 (t→i) / 92.3 (i→t) agree with UniIR's paper as a leaderboard "
                 "restates it (wizwand.com, UniIR: 'M-BEIR (test) Average Recall 50.6'); the rest: " + _UNREACHABLE),
    _row("MM-Embed", None,
         (41.0, 71.3, 17.1, 95.9, 68.8, 85.0, 41.3, 90.1, 18.4, 32.4, 42.1, 42.3, 25.7, 50.0, 64.1, 57.7),
         None, 52.7, checkpoint="nvidia/MM-Embed", checked=f"not re-checked: {_UNREACHABLE}"),
    _row("LamRA-Ret (7B)",
         (41.6, 81.5, 28.7, 86.0, 62.6, 81.2, 39.6, 90.6, 30.4, 32.1, 54.1, 52.1, 33.2, 53.1, 76.2, 63.3),
         (41.3, 75.4, 28.7, 85.8, 62.5, 81.0, 39.3, 90.4, 30.4, 32.1, 48.4, 48.7, 33.1, 50.5, 70.0, 60.0),
         56.6, 54.9, checkpoint="code-kunkun/LamRA-Ret",
         checked="not re-checked: the LamRA repository publishes no table (GitHub Code-kunkun/LamRA README, commit "
                 f"7286399); {_UNREACHABLE}"),
    _row("LamRA (7B) + re-ranker",
         (48.0, 85.2, 32.9, 96.7, 75.8, 87.7, 48.6, 92.3, 36.1, 33.5, 59.2, 64.1, 37.8, 63.3, 79.2, 78.3),
         (46.9, 78.0, 32.5, 96.5, 74.4, 87.1, 47.6, 92.4, 36.6, 34.2, 54.0, 58.7, 37.4, 59.7, 72.6, 74.0),
         63.7, 61.4, checkpoint="code-kunkun/LamRA-Ret with its LamRA-Rank re-ranker",
         checked=f"not re-checked: {_UNREACHABLE}"),
    _row("U-MARVEL (Qwen2-VL-7B)",
         (47.3, 84.4, 33.6, 97.1, 78.8, 88.5, 47.3, 93.5, 35.1, 34.2, 62.5, 58.3, 36.4, 60.7, 79.4, 74.7),
         (47.2, 72.8, 33.3, 96.7, 78.7, 87.7, 47.2, 93.5, 34.9, 34.0, 58.3, 52.2, 36.0, 56.0, 73.1, 69.2),
         63.2, 60.7, checkpoint="TencentBAC/U-MARVEL-Qwen2VL-7B-Instruct", checked="U-MARVEL's own table"),
    _row("U-MARVEL+ (Qwen2-VL-7B, re-ranker)",
         (49.4, 85.6, 34.2, 98.5, 81.4, 89.4, 50.5, 88.4, 37.7, 34.7, 63.7, 62.9, 38.2, 63.2, 80.8, 78.9),
         (48.8, 70.1, 33.8, 98.3, 80.8, 88.3, 49.8, 86.0, 36.8, 34.8, 58.7, 56.9, 37.4, 58.4, 74.9, 73.8),
         64.8, 61.8, checkpoint="TencentBAC/U-MARVEL-Qwen2VL-7B-Instruct with its re-ranker",
         checked="U-MARVEL's own table",
         note="the global cells average 61.725 where the table prints 61.8 (a rounding or transcription slip in "
              "the source; the cells are kept as printed)"),
)


def published_for(pool: str) -> list[Published]:
    """Entries that report a number for this pool."""
    return [p for p in PUBLISHED if pool in p.average]
