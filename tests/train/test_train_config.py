"""TrainConfig: one flat namespace (YAML, --set, stage overrides) read into typed parts, and back."""

from __future__ import annotations

import typing

import pytest
import yaml

from umr.train.config import KEY_PART, PARTS, TrainConfig, TrainType
from umr.train.data import BATCH_KEYS, BatchBy
from umr.train.lora import LoraSpec
from umr.train.stages import TRAINERS, make_trainer

#: every key set away from its default, of every part (the shape of a train_config.yaml)
FLAT = {
    "type": "distill", "model": "tiny:u-marvel", "recipe": "u-marvel", "device": "cpu", "dtype": "fp32",
    "lora": {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj"]}, "train_vision": True,
    "frozen": ["^text"], "gradient_checkpointing": True, "max_image_tokens": 16,
    "data": "pairs.jsonl", "data_root": "img", "mbeir_pool": "pool.jsonl", "tasks": ["task1"],
    "datasets": ["mscoco"], "instruction": "", "mix_data": "mix.jsonl", "mix_share": 0.25, "batch_by": "none",
    "num_negatives": 3, "share_negatives": False,
    "epochs": 2, "max_steps": 7, "batch_size": 4, "micro_batch_size": 2, "lr": 3e-4, "temperature_lr": 1e-3,
    "weight_decay": 0.01, "warmup_steps": 5, "schedule": "cosine", "grad_clip": None, "seed": 3,
    "temperature": 0.02, "learn_temperature": False, "symmetric": True, "hard_negative_weight": 0.5,
    "distill_temperature": 0.1,
    "distill_hard_weight": 0.5, "distill_in_batch": True,
    "output_dir": "runs/x", "save_every": 2, "keep_checkpoints": 1, "log_every": 1, "merge_at_end": False,
    "tensorboard": "tb", "deepspeed": None,
    "stages": [{"name": "a", "lr": 1e-5}], "mine": {"top": 5}, "from_base": True, "teacher": {"top": 3},
}


def test_flat_mapping_round_trips_unchanged_into_typed_parts() -> None:
    config = TrainConfig.from_dict(FLAT)
    assert (config.type, config.optim.lr, config.optim.schedule, config.data.num_negatives) == \
        ("distill", 3e-4, "cosine", 3)
    assert config.model.lora == LoraSpec(r=4, alpha=8, dropout=0.1, target_modules=["q_proj"])
    assert (config.loss.distill_hard_weight, config.run.log_every, config.chain.teacher) == (0.5, 1, {"top": 3})
    # to_dict is flat (no part name as a key, no nested part) and equal to what was read
    assert config.to_dict() == FLAT and set(FLAT) == {"type", *KEY_PART}
    assert TrainConfig.from_dict(yaml.safe_load(config.to_yaml())).to_dict() == FLAT  # train_config.yaml


def test_every_key_belongs_to_exactly_one_part() -> None:
    names = [f for cls in PARTS.values() for f in cls.__dataclass_fields__]
    assert len(names) == len(set(names)) == len(KEY_PART)


def test_unknown_key_is_one_line_naming_it_and_the_known_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['learning_rate'\]; known: \[.*'lr'") as err:
        TrainConfig.of(learning_rate=1e-4)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("schedule", "exp", "schedule must be one of constant, linear, cosine, not 'exp'"),
    ("type", "dpo", "type must be one of contrastive, distill, reranker, not 'dpo'"),
    ("batch_by", "dataset", "batch_by must be one of none, task, query_modality, not 'dataset'"),
    ("schedule", None, "schedule must be one of constant, linear, cosine, not None"),
])
def test_a_choice_outside_its_literal_names_the_field_and_the_choices(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig.of(**{key: value})


def test_literal_choices_match_what_the_code_dispatches_on() -> None:
    assert set(typing.get_args(TrainType)) == set(TRAINERS) | {"reranker"}
    assert typing.get_args(BatchBy) == ("none", *BATCH_KEYS)


def test_make_trainer_refuses_a_reranker_config() -> None:
    with pytest.raises(ValueError, match="a reranker stage trains a re-ranker, not an embedder"):
        make_trainer(TrainConfig.of(type="reranker"))


def test_hard_negative_weight_is_a_loss_option_and_must_be_positive() -> None:
    config = TrainConfig.of(hard_negative_weight="0.3")  # YAML 1.1 may hand a string
    assert config.loss.hard_negative_weight == 0.3
    assert config.to_dict()["hard_negative_weight"] == 0.3
    with pytest.raises(Exception, match="hard_negative_weight: must be > 0"):
        TrainConfig.of(hard_negative_weight=0)
