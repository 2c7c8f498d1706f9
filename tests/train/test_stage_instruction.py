"""`instruction` on an M-BEIR root: None keeps each query's drawn instruction, "" trains without one (U-MARVEL's
and LamRA's text and caption stages), a text replaces every query's."""

from __future__ import annotations

from pathlib import Path

import pytest

from umr.train.trainer import TrainConfig, load_config_pairs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from umr.data.world import build_world

    out = tmp_path_factory.mktemp("world") / "world-tiny"
    build_world(out, size="tiny", seed=0)
    return out


def test_instruction_option_on_a_root(world: Path) -> None:
    drawn = load_config_pairs(TrainConfig(data=str(world), tasks=["task1"]))
    assert drawn and all(p.query.instruction for p in drawn)
    bare = load_config_pairs(TrainConfig(data=str(world), tasks=["task1"], instruction=""))
    assert [p.query.instruction for p in bare] == [None] * len(drawn)
    assert [p.query.text for p in bare] == [p.query.text for p in drawn]  # only the instruction went
    fixed = load_config_pairs(TrainConfig(data=str(world), tasks=["task1"], instruction="Find the passage."))
    assert {p.query.instruction for p in fixed} == {"Find the passage."}
