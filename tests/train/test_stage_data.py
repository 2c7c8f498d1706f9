"""Stages that build their data from the chain's current model: `tasks`, `mine`, `type: reranker`, `teacher`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umr.train.config import TrainConfig
from umr.train.stages import run_stages, stage_configs
from umr.train.trainer import load_config_pairs


def test_tasks_filter_keeps_only_those_sets(world: Path) -> None:
    text = load_config_pairs(TrainConfig.of(data=str(world), tasks=["task1"]))
    both = load_config_pairs(TrainConfig.of(data=str(world), tasks=["task0", "task3"]))
    every = load_config_pairs(TrainConfig.of(data=str(world)))
    assert all(p.query.modality == "text" and p.positive.modality == "text" for p in text)
    assert {(p.query.modality, p.positive.modality) for p in both} == {("text", "image"), ("image", "text")}
    assert len(text) + len(both) < len(every)


def test_chain_mines_trains_a_reranker_and_distills_from_it(world: Path, tiny_gme_dir: str, tmp_path: Path) -> None:
    cfg = TrainConfig.from_dict({
        "model": tiny_gme_dir, "data": str(world), "output_dir": str(tmp_path / "run"), "batch_size": 4,
        "lr": 1e-3, "device": "cpu", "tasks": ["task0"], "log_every": 1,  # task0 = 3 sets in the world
        "stages": [
            {"name": "instruct", "max_steps": 2},
            {"name": "hard", "max_steps": 2, "mine": {"top": 6, "take": 2, "max_per_set": 8}},
            {"name": "rr", "type": "reranker", "max_steps": 2, "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
             "mine": {"top": 4, "take": 3, "max_per_set": 8}},
            {"name": "distill", "type": "distill", "max_steps": 1, "max_image_tokens": 4,  # U-MARVEL: 224²
             "teacher": {"top": 3, "reranker": "rr", "max_per_set": 4, "scale": 0.5}},  # U-MARVEL: fused / 2
        ]})
    final = run_stages(cfg)
    run = tmp_path / "run"
    mined = [json.loads(line) for line in (run / "stage-1-hard" / "negatives.jsonl").open()]
    assert len(mined) == 3 * 8 and all(len(r["negatives"]) == 2 for r in mined)
    assert all(r["positive"] != n for r in mined for n in r["negatives"])
    hard_cfg = json.dumps(TrainConfig.from_yaml(run / "stage-1-hard" / "train_config.yaml").to_dict())
    assert '"num_negatives": 2' in hard_cfg and "negatives.jsonl" in hard_cfg
    assert (run / "stage-2-rr" / "final" / "umr_reranker.json").is_file()
    teacher = [json.loads(line) for line in (run / "stage-3-distill" / "teacher.jsonl").open()]
    assert len(teacher) == 3 * 4 and all(len(t["candidates"]) == 3 for t in teacher)
    assert all(0 <= t["positive"] < 3 for t in teacher)  # the labelled positive is always in the list
    assert any(p > 0 for t in teacher for p in t["p_yes"])  # the re-ranker stage's model scored them
    for t in teacher:  # scale 0.5: U-MARVEL divides the fused score by 2
        assert t["teacher"] == pytest.approx([0.5 * (c + p) for c, p in zip(t["cos"], t["p_yes"], strict=True)],
                                             abs=1e-5)
    # the training-time image cap stays out of the written model: it keeps the recipe's 16 tokens
    from umr.models.recipe import recipe_for_checkpoint

    assert recipe_for_checkpoint(str(final))[1].get("max_image_tokens") == 16
    # the re-ranker stage does not advance the chain: distill starts from the hard stage's embedder
    distill_cfg = TrainConfig.from_yaml(run / "stage-3-distill" / "train_config.yaml")
    assert distill_cfg.model.model == str(run / "stage-1-hard" / "final")
    assert final == run / "stage-3-distill" / "final"


@pytest.mark.parametrize(("stage", "message"), [
    ({"mine": {"top": 5, "tak": 2}}, "unknown mine option"),
    ({"type": "reranker"}, "reranker stage learns from mined lists"),
    ({"teacher": {"top": 5}}, "belongs to a `type: distill` stage"),
    ({"type": "distill"}, "needs `teacher:` options"),
    ({"type": "distill", "teacher": {"k": 5}}, "unknown teacher option"),
    ({"type": "distill", "mine": {"top": 5}, "teacher": {"top": 5}}, "`mine` and `teacher` each build"),
    ({"mine": {"top": 5}, "teacher": {"top": 5}}, "`mine` and `teacher` each build"),
    ({"type": "distill", "batch_by": "task", "teacher": {"top": 5}}, "batch_by: task does not apply to a distill"),
])
def test_bad_stage_options_fail_before_training(world: Path, stage: dict, message: str) -> None:
    cfg = TrainConfig.from_dict({"data": str(world), "stages": [{"name": "s", **stage}]})
    with pytest.raises(ValueError, match=message):
        stage_configs(cfg)


# `instruction` on an M-BEIR root: None keeps each query's drawn instruction, "" trains without one (U-MARVEL's
# and LamRA's text and caption stages), a text replaces every query's.
def test_instruction_option_on_a_root(world: Path) -> None:
    drawn = load_config_pairs(TrainConfig.of(data=str(world), tasks=["task1"]))
    assert drawn and all(p.query.instruction for p in drawn)
    bare = load_config_pairs(TrainConfig.of(data=str(world), tasks=["task1"], instruction=""))
    assert [p.query.instruction for p in bare] == [None] * len(drawn)
    assert [p.query.text for p in bare] == [p.query.text for p in drawn]  # only the instruction went
    fixed = load_config_pairs(TrainConfig.of(data=str(world), tasks=["task1"], instruction="Find the passage."))
    assert {p.query.instruction for p in fixed} == {"Find the passage."}


def test_image_cap_applies_while_training_only(tiny_gme_dir: str, draw) -> None:
    from umr import load_embedder
    from umr.train.image_cap import cap_image_tokens

    embedder = load_embedder(tiny_gme_dir, device="cpu")
    image = draw("red", px=224)
    assert embedder.backbone.process_images([image])[1] == [16]
    restore = cap_image_tokens(embedder, 4)
    assert embedder.backbone.process_images([image])[1] == [4]
    restore()
    assert embedder.backbone.process_images([image])[1] == [16]
    with pytest.raises(ValueError, match="max_image_tokens applies to Qwen2-VL-family embedders"):
        cap_image_tokens(load_embedder("tiny:mm-embed", device="cpu"), 4)


def test_a_from_base_stage_trains_from_the_base_on_what_the_chain_mined(world: Path, tiny_gme_dir: str,
                                                                         tmp_path: Path) -> None:
    """MM-Embed's hard stage: negatives mined by the instruct model, training restarted from the base model."""
    cfg = TrainConfig.from_dict({
        "model": tiny_gme_dir, "data": str(world), "output_dir": str(tmp_path / "run"), "batch_size": 4,
        "device": "cpu", "tasks": ["task0"], "max_steps": 1,
        "stages": [{"name": "instruct"},
                   {"name": "hard", "from_base": True, "mine": {"top": 6, "take": 2, "max_per_set": 4}}]})
    run_stages(cfg)
    hard = TrainConfig.from_yaml(tmp_path / "run" / "stage-1-hard" / "train_config.yaml")
    assert hard.model.model == tiny_gme_dir and hard.data.data.endswith("negatives.jsonl")
    mined_with = json.loads((tmp_path / "run" / "stage-1-hard" / "negatives.jsonl").open().readline())
    assert len(mined_with["negatives"]) == 2
