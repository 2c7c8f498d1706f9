"""The shipped world-tiny-*.yaml configs on a tiny world. One, u-marvel's (every kind of stage: mining, a
re-ranker, a distillation teacher), runs end to end (`umr train --config`), one step a stage, and every stage leaves
a final/ that loads: an embedder of the config's recipe, or the re-ranker of a reranker stage; stages that mine
really mine (each row has negatives). Every config, that one included, is checked through its stage configs:
parsed and validated as `umr train` does before training, its recipe known, a teacher naming an earlier re-ranker
stage — what can go wrong in a config without training its model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from umr import Item, load_embedder
from umr.cli import main
from umr.models.recipe import get_recipe
from umr.train.config import TrainConfig
from umr.train.run_log import read_log
from umr.train.stages import stage_configs, stage_name

CONFIGS = Path(__file__).parents[2] / "src" / "umr" / "train" / "configs"
WORLD_TINY = sorted(p.name for p in CONFIGS.glob("world-tiny-*.yaml"))
END_TO_END = "world-tiny-u-marvel.yaml"  # the only chain with every kind of stage


def smoke_config(raw: dict, world: Path, out: Path) -> dict:
    """The shipped config pointed at `world` and `out`, one step per stage; stages that mine or build teacher lists
    do it on the 3 caption→image sets (task0), 4 queries a set (12 rows: one batch of 8): short pool embedding."""
    shipped = raw["data"]
    raw = {**raw, "data": str(world), "output_dir": str(out), "device": "cpu", "log_every": 1}
    stages = []
    for stage in raw["stages"]:
        stage = {**stage, "max_steps": 1}
        for key in ("data", "mix_data"):
            if stage.get(key) == shipped:
                stage[key] = str(world)
        for key in ("mine", "teacher"):
            if key in stage:
                stage[key] = {**stage[key], "max_per_set": 4}
                stage.setdefault("tasks", ["task0"])
        stages.append(stage)
    return {**raw, "stages": stages}


def test_world_tiny_configs_exist() -> None:
    assert {"world-tiny-gme.yaml", "world-tiny-lamra.yaml", "world-tiny-mm-embed.yaml",
            "world-tiny-u-marvel.yaml"} <= set(WORLD_TINY)
    for name in WORLD_TINY:  # the small twin of each tiny config ships too
        assert (CONFIGS / name.replace("world-tiny-", "world-small-")).is_file(), name


@pytest.mark.parametrize("name", WORLD_TINY)
def test_world_tiny_config_validates_stage_by_stage(name: str, world: Path, tmp_path: Path) -> None:
    shipped = yaml.safe_load((CONFIGS / name).read_text())
    assert shipped["data"] == "data/world-tiny" and shipped["stages"]
    config = TrainConfig.from_dict(smoke_config(shipped, world, tmp_path / "run"))
    stages = stage_configs(config)  # every stage's options checked, as `umr train` does before training
    assert [stage_name(s) for s in stages] == [str(s.get("name", i)) for i, s in enumerate(shipped["stages"])]
    assert get_recipe(shipped["model"].removeprefix("tiny:").split("@")[0]).name
    rerankers: set[str] = set()
    for stage in stages:
        assert stage.type in ("contrastive", "reranker", "distill") and Path(stage.data.data) == world
        if stage.model.recipe is not None:
            assert get_recipe(stage.model.recipe).name
        if stage.type == "reranker":
            rerankers.add(stage_name(stage))
        teacher = stage.chain.teacher
        if teacher and teacher.get("reranker") is not None:
            assert teacher["reranker"] in rerankers, f"{stage_name(stage)}: teacher names no earlier re-ranker"


@pytest.mark.slow
def test_world_tiny_config_runs_every_stage(world: Path, tmp_path: Path) -> None:
    name = END_TO_END
    shipped = yaml.safe_load((CONFIGS / name).read_text())
    assert shipped["data"] == "data/world-tiny" and shipped["stages"]
    raw = smoke_config(shipped, world, tmp_path / "run")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    assert main(["train", "--config", str(tmp_path / "config.yaml")]) == 0

    recipe = shipped["model"].removeprefix("tiny:")
    for i, stage in enumerate(TrainConfig.from_dict(raw).chain.stages):
        folder = tmp_path / "run" / f"stage-{i}-{stage.get('name', i)}"
        final = folder / "final"
        assert final.is_dir(), final
        if stage.get("mine") and stage.get("type") != "reranker":
            rows = [json.loads(line) for line in (folder / "negatives.jsonl").open()]
            assert rows and all(r["negatives"] for r in rows), f"{folder.name}: mined rows without negatives"
        log = read_log(folder)  # the one step each stage was given ran, on a finite loss
        assert [r["step"] for r in log] == [1] and np.isfinite(log[0]["loss"]), f"{folder.name}: {log}"
        if stage.get("type") == "reranker":
            from umr.rerank.prompted import Reranker

            p_yes = Reranker(final, device="cpu").score(Item(text="a red circle"), [Item(text="a red circle"),
                                                                                    Item(text="a blue square")])
            assert p_yes.shape == (2,) and ((p_yes > 0) & (p_yes < 1)).all(), p_yes
            continue
        model = load_embedder(final, device="cpu")
        assert json.loads((final / "umr_recipe.json").read_text())["recipe"] == recipe
        vec = model.encode([Item(text="a red circle"), Item(image=next((world / "images").rglob("*.png")))])
        assert vec.shape[0] == 2 and np.allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-4)
