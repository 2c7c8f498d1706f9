"""Continual text fine-tuning (MM-Embed): after multimodal training, train on text→text pairs at a small LR with
a share of multimodal pairs mixed in, so text retrieval improves while the multimodal tasks hold.

As a stage of a training config (see umr.train.stages):

    - {name: text, data: text_pairs.jsonl, lr: 1.0e-5, mix_data: mbeir_pairs.jsonl, mix_share: 0.25}

`mix_share` is the share of the stage's pairs drawn from `mix_data` (0.25: one pair in four is multimodal).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from umr.errors import UmrError
from umr.train.data import Pair


def mix_pairs(main: Sequence[Pair], extra: Sequence[Pair], share: float, seed: int = 0) -> list[Pair]:
    """main + a seeded sample of extra such that extra makes up `share` of the result (capped by len(extra)).

    The sample is drawn once (not per epoch), so a resumed run sees the same data; epoch_batches shuffles it in.
    """
    if not 0.0 <= share < 1.0:
        raise UmrError(f"mix_share must be in [0, 1), got {share}")
    n_extra = min(len(extra), round(len(main) * share / (1.0 - share)))
    rng = random.Random(seed * 7_919 + 1)
    return [*main, *rng.sample(list(extra), n_extra)]
