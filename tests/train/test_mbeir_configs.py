"""The shipped M-BEIR training configs run: each on the real-layout fixture with its model swapped for the tiny
twin of its recipe and every stage cut to 2 steps (`umr train --set`), so a typo in a config fails here."""

from __future__ import annotations

import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

from umr.cli import main
from umr.cli.cmd_train import apply_overrides

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from mbeir_real import build_real_layout

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "src/umr/train/configs/mbeir").glob("*.yaml"))


@pytest.fixture(scope="module")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_real_layout(tmp_path_factory.mktemp("mbeir") / "M-BEIR")


def test_the_configs_ship_with_the_package():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["umr"]
    assert {p.stem for p in CONFIGS} >= {"u-marvel-qwen2vl-7b", "lamra-ret-qwen2vl-7b", "mm-embed-llava-next-7b",
                                         "gme-qwen2vl-2b", "gme-qwen2vl-7b"}
    for path in CONFIGS:
        rel = path.relative_to(REPO / "src/umr").as_posix()
        assert any(fnmatch(rel, p) and rel.count("/") == p.count("/") for p in patterns), rel
        header = path.read_text().split("\nmodel:")[0]
        assert "Expected" in header and "Compute" in header  # what it should reach, on what hardware
        assert "GitHub" in header or "UNCONFIRMED" in header  # cited from code, or marked as not checked


def test_overrides_reach_the_stages_that_set_a_key():
    raw = {"lr": 1.0, "lora": {"r": 8}, "stages": [{"name": "a", "lr": 2.0, "mine": {"top": 100}}, {"name": "b"}]}
    out = apply_overrides(raw, ["lr=1e-4", "mine.top=5", "lora.r=4", "deepspeed=null", "tasks=[task0, task3]"])
    assert out["lr"] == 1e-4 and out["stages"][0]["lr"] == 1e-4 and "lr" not in out["stages"][1]
    assert out["stages"][0]["mine"] == {"top": 5} and "mine" not in out  # a stage-only mapping stays there
    assert out["lora"] == {"r": 4} and out["deepspeed"] is None and out["tasks"] == ["task0", "task3"]
    assert raw["lr"] == 1.0 and raw["stages"][0]["mine"]["top"] == 100  # the input is not changed
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(raw, ["lr"])


def test_set_goes_through_the_configs_own_checks(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: tiny:gme\ndata: nowhere\n")
    assert main(["train", "--config", str(cfg), "--set", "schedule=sideways"]) == 2
    assert "schedule must be constant, linear or cosine" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "--set", "no_such_option=1"]) == 2
    assert "unknown training option(s) ['no_such_option']" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_runs_two_steps_on_the_real_layout(config, real_root, tmp_path):
    raw = yaml.safe_load(config.read_text())
    out = tmp_path / "run"
    overrides = [f"model=tiny:{raw['recipe']}", f"data={real_root}", f"output_dir={out}", "max_steps=2",
                 "batch_size=4", "deepspeed=null", "save_every=0"]
    text = config.read_text()
    for key, extra in (("mine:", ["mine.top=8", "mine.max_per_set=4"]),
                       ("teacher:", ["teacher.top=8", "teacher.max_per_set=4"]),
                       ("mix_data:", [f"mix_data={real_root}"])):
        if key in text:
            overrides += extra
    assert main(["train", "--config", str(config), "--set", *overrides]) == 0
    stages = [s.get("name") for s in raw["stages"]]
    last = out / f"stage-{len(stages) - 1}-{stages[-1]}"
    assert (last / "final").is_dir()
    for i, name in enumerate(stages):  # every stage ran (or, for a reranker, wrote its model)
        assert (out / f"stage-{i}-{name}" / "final").is_dir(), name
