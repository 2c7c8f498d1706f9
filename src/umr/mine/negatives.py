"""Choosing hard negatives for one query from its retrieved list: the rules, as pure functions.

    picked = select_negatives(ranked, positives={"9:4"}, positive_score=0.71, want_modality="image",
                              opts=MineOptions(take=5, fn_ratio=0.95, modality_aware=True))

Rules, in this order, over the retriever's top-N (rank 1 = best):
1. labelled positives are never negatives (every positive of the query, not only the one in the pair);
2. false-negative filters, over candidates of the modality the task returns only (a candidate of another
   modality can never be a positive of the task, so it is never a false negative):
   - `fn_ratio` (NV-Retriever's positive-aware "TopK-PercPos"): a candidate whose score is *strictly greater*
     than `fn_ratio × positive_score` is dropped and counted — it scores almost like (or above) the positive, so
     it is likely an unlabelled positive. It depends on the model's cosine scale: a model whose cosines all sit
     in 0.81–0.99 (a tiny MLLM mean-pooling a long shared prompt) has every candidate above 0.95 × positive;
   - `fn_skip` (a rank window, as RocketQA/SimANS skip the very top): the `fn_skip` best-ranked candidates left
     are dropped and counted, whatever the scale;
3. plain mining (U-MARVEL) takes the `take` best survivors; modality-aware mining (MM-Embed) takes up to
   `wrong_quota` of the best survivors whose modality is *not* the one the task asks for, and fills the rest
   with the best survivors of the right modality (topping up from the other group when one runs out).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from umr.errors import UmrError


@dataclass
class MineOptions:
    top: int = 100  # retrieved list length the negatives come from (U-MARVEL: top-100)
    take: int = 5  # negatives kept per query (U-MARVEL: 5)
    fn_ratio: float | None = None  # false-negative filter ratio (NV-Retriever: 0.95); None = off
    fn_skip: int = 0  # rank-window false-negative filter: skip this many best right-modality candidates
    modality_aware: bool = False  # MM-Embed: include high-ranked candidates of the wrong modality
    wrong_quota: int | None = None  # wrong-modality negatives per query; None = half of `take`, rounded up
    strategy: str = "hard"  # "hard": from the retrieved list; "random": uniform over the pool (ablation baseline)
    seed: int = 0  # random strategy only

    def __post_init__(self) -> None:
        if self.take < 1 or self.top < 1:
            raise UmrError(f"top and take must be ≥ 1, got top={self.top}, take={self.take}")
        if self.strategy not in ("hard", "random"):
            raise UmrError(f"strategy must be 'hard' or 'random', got {self.strategy!r}")
        if self.fn_ratio is not None and self.fn_ratio <= 0:
            raise UmrError(f"the false-negative ratio must be > 0, got {self.fn_ratio}")
        if self.fn_skip < 0:
            raise UmrError(f"fn_skip must be ≥ 0, got {self.fn_skip}")

    @property
    def quota(self) -> int:
        return min(self.take, self.wrong_quota if self.wrong_quota is not None else (self.take + 1) // 2)


@dataclass(frozen=True)
class RankedCandidate:
    """One retrieved candidate: its id, 1-based rank in the retrieved list, score and modality (a place in a
    ranked list; the pool entry itself is `umr.data.mbeir.Candidate`)."""

    did: str
    rank: int
    score: float
    modality: str

    def to_dict(self) -> dict[str, object]:
        return {"did": self.did, "rank": self.rank, "score": round(self.score, 6), "modality": self.modality}


@dataclass
class Selection:
    negatives: list[RankedCandidate]  # in rank order
    fn_dropped: int  # candidates removed by the false-negative filter (positives not counted)


def false_negative_threshold(positive_score: float, ratio: float | None) -> float:
    """Candidates scoring strictly above this are dropped; +inf when the filter is off."""
    return float("inf") if ratio is None else ratio * positive_score


def select_negatives(ranked: Sequence[RankedCandidate], positives: Collection[str], positive_score: float,
                     want_modality: str, opts: MineOptions) -> Selection:
    """Apply the module's rules to one query's retrieved list (already cut to the top-N, best first)."""
    limit = false_negative_threshold(positive_score, opts.fn_ratio)
    survivors, dropped, skip = [], 0, opts.fn_skip
    for cand in ranked:
        if cand.did in positives:
            continue
        if cand.modality == want_modality:
            if cand.score > limit:
                dropped += 1
                continue
            if skip:
                skip -= 1
                dropped += 1
                continue
        survivors.append(cand)
    if not opts.modality_aware:
        return Selection(survivors[:opts.take], dropped)
    wrong = [c for c in survivors if c.modality != want_modality]
    right = [c for c in survivors if c.modality == want_modality]
    n_wrong = min(opts.quota, len(wrong))
    n_right = min(opts.take - n_wrong, len(right))
    n_wrong = min(opts.take - n_right, len(wrong))  # top up with wrong-modality ones if right ones ran out
    chosen = wrong[:n_wrong] + right[:n_right]
    return Selection(sorted(chosen, key=lambda c: c.rank), dropped)


def random_negatives(pool_dids: Sequence[str], pool_modality: Sequence[str], positives: Collection[str],
                     take: int, rng: random.Random) -> list[RankedCandidate]:
    """`take` distinct pool entries that are not positives, uniformly (rank 0, score nan: not retrieved)."""
    allowed = [i for i, d in enumerate(pool_dids) if d not in positives]
    rows = rng.sample(allowed, min(take, len(allowed)))
    return [RankedCandidate(pool_dids[i], 0, float("nan"), str(pool_modality[i])) for i in rows]
