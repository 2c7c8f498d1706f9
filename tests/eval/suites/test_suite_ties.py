"""The one tie rule on every suite: of equal scores the candidate earlier in the candidate list ranks higher.

A model that gives every item the same vector ties every candidate, so each query's positive ranks by its place in
the candidate list; the numbers below are worked out by hand from the fixtures' file order (see suite_fixtures).
``ties="pessimistic"`` (every tie against the positive) is umr's earlier rule.
"""

import json

import numpy as np
import pytest
import torch
from suite_fixtures import BUILDERS, KeyEmbedder, _ListEmbedder, png

from umr.eval.suites import SuiteOptions, run_suite


class SameVector(_ListEmbedder):
    """Every item, query or candidate, gets one vector: all scores tie."""

    name = "same"

    @property
    def dim(self) -> int:
        return 4

    def vector(self, item):
        return np.array([1.0, 0.0, 0.0, 0.0])

    def forward(self, batch):
        return torch.tensor(np.stack([self.vector(it) for it in batch]), dtype=torch.float32)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("ties")
    return {name: build(root) for name, build in BUILDERS.items()}


# suite → (row, {metric: value with the position rule}, {metric: value with the pessimistic rule})
EXPECTED = {
    # six test images: caption of image i finds it at rank i + 1; image i's first caption is column 5i → 5i + 1
    "flickr30k": ("flickr30k test", {"t2i R@1": 1 / 6, "t2i R@5": 5 / 6, "t2i R@10": 1.0, "i2t R@1": 1 / 6,
                                     "i2t R@5": 1 / 6, "i2t R@10": 2 / 6, "RSUM": 1 / 6 + 5 / 6 + 1 + 4 / 6},
                  {"t2i R@1": 0.0, "t2i R@5": 0.0, "t2i R@10": 1.0, "i2t R@10": 0.0, "RSUM": 1.0}),
    # ten test images, the same arithmetic
    "coco": ("coco 10 img", {"t2i R@1": 0.1, "t2i R@5": 0.5, "t2i R@10": 1.0, "i2t R@1": 0.1, "i2t R@5": 0.1,
                             "i2t R@10": 0.2},
             {"t2i R@5": 0.0, "t2i R@10": 1.0, "i2t R@10": 0.0}),  # ten images: the last rank is 10
    # targets 1, 5, 9, 10 with references 0, 3, 6, 11 removed → ranks 1, 5, 9, 11; within the image sets of six
    # (reference removed) → 1, 5, 3, 5
    "cirr": ("cirr val", {"R@1": 0.25, "R@5": 0.5, "R@10": 0.75, "R@50": 1.0, "Rs@1": 0.25, "Rs@2": 0.25,
                          "Rs@3": 0.5, "avg": 0.375},
             {"R@1": 0.0, "R@10": 0.0, "R@50": 1.0, "Rs@3": 0.0}),
    # reference kept; ground truths at ranks {2}, {4, 5}, {7, 8, 9}, {11}; targets (first gt) at 2, 4, 7, 11
    "circo": ("circo val", {"mAP@5": (1 / 2 + (1 / 4 + 2 / 5) / 2) / 4,
                            "mAP@10": (1 / 2 + (1 / 4 + 2 / 5) / 2 + (1 / 7 + 2 / 8 + 3 / 9) / 3) / 4,
                            "R@5": 0.5, "R@10": 0.75, "R@25": 1.0},
              {"mAP@5": 0.0, "R@10": 0.0, "R@25": 1.0}),
    # twelve images a category, targets at columns 1, 3, 5 → ranks 2, 4, 6; pessimistic: 12
    "fashioniq": ("mean", {"R@10": 1.0, "R@50": 1.0}, {"R@10": 0.0, "R@50": 1.0}),
    # the correct candidate is listed first: it wins every tie (VLM2Vec's argmax == 0)
    "mmeb": ("mean (2 tasks)", {"P@1": 1.0}, {"P@1": 0.0}),
    # four videos, one sentence each: video i at rank i + 1 → R@1 1/4, MdR = MnR = 2.5; pessimistic: all 4
    "msrvtt": ("MSRVTT_JSFUSION_test", {"t2v R@1": 0.25, "t2v MdR": 2.5, "t2v MnR": 2.5, "v2t R@1": 0.25,
                                        "v2t MnR": 2.5},
               {"t2v R@1": 0.0, "t2v MdR": 4.0, "v2t MnR": 4.0}),
}


@pytest.mark.parametrize("suite", list(EXPECTED))
def test_all_tied_scores_rank_by_candidate_position(suite, fixtures):
    row, position, pessimistic = EXPECTED[suite]
    fx = fixtures[suite]
    opts = {"video_mode": "native"} if suite == "msrvtt" else {}
    got = run_suite(suite, SameVector(), fx.root, SuiteOptions(**opts)).row(row).metrics
    assert {k: got[k] for k in position} == pytest.approx(position)
    old = run_suite(suite, SameVector(), fx.root, SuiteOptions(ties="pessimistic", **opts)).row(row).metrics
    assert {k: old[k] for k in pessimistic} == pytest.approx(pessimistic)


def test_mmeb_duplicated_label_counts_as_a_hit(tmp_path):
    """VLM2Vec's get_pred: argmax over the task's candidate list, correct when it is 0. A label listed twice gets
    the same embedding, so the correct candidate ties its duplicate and argmax picks index 0: P@1 100.0."""
    root = tmp_path / "mmeb"
    labels = ["tench", "goldfish", "shark"]
    lines, answers = [], {}
    for i, tgts in enumerate([["tench", "tench", "shark"], ["goldfish", "shark", "goldfish"],
                              ["shark", "tench", "goldfish"]]):
        png(root / "ImageNet-1K" / f"{i}.png", i)
        lines.append(json.dumps({"qry_text": "<|image_1|>\nRepresent the given image for classification",
                                 "qry_img_path": f"ImageNet-1K/{i}.png", "tgt_text": tgts, "tgt_img_path": [""] * 3}))
        answers[f"ImageNet-1K:{i + 1}"] = f"ImageNet-1K||{labels[i]}"  # the query's vector = its label's vector
    (root / "ImageNet-1K.jsonl").write_text("\n".join(lines) + "\n")
    model = KeyEmbedder(answers)
    assert run_suite("mmeb", model, root).rows[0].metrics["P@1"] == 1.0
    # the old rule: the two queries with a duplicated label are misses, the third a hit → 33.3
    old = run_suite("mmeb", model, root, SuiteOptions(ties="pessimistic")).rows[0].metrics["P@1"]
    assert old == pytest.approx(1 / 3)


def test_an_unknown_tie_rule_fails_before_embedding(fixtures):
    with pytest.raises(ValueError, match="ties must be one of"):
        run_suite("cirr", SameVector(), fixtures["cirr"].root, SuiteOptions(ties="random"))
