"""`umr ablate` end to end at the smallest settings: every (a)–(e) row present with a finite number, the Markdown
table written, and a rerun resumes from the finished steps (same rows, nothing retrained)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from umr.ablation.measures import Row
from umr.cli import main

TINY = ["--size", "tiny", "--base-steps", "2", "--steps", "2", "--rerank-steps", "1", "--teacher-queries", "2",
        "--top", "10", "--rerank", "3", "--batch-size", "8", "--base-batch-size", "8"]


@pytest.mark.slow
def test_ablate_writes_every_row_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "abl"
    assert main(["ablate", "--out", str(out), *TINY]) == 0
    table = json.loads((out / "ablation.json").read_text())
    rows = table["rows"]
    assert {r["part"] for r in rows} == {"-", "a", "b", "c", "d", "e"}
    assert all(math.isfinite(r["value"]) and 0 <= r["value"] <= 100 for r in rows), rows
    assert all("1 query =" in r["note"] for r in rows)  # every number says what one query is worth
    md = (out / "ablation.md").read_text()
    assert md.count("\n| (") == len(rows)
    stamp = (out / "hard" / "final" / "model.safetensors").stat().st_mtime_ns
    assert main(["ablate", "--out", str(out), *TINY]) == 0  # resumed: everything reused
    again = json.loads((out / "ablation.json").read_text())
    assert again["rows"] == rows
    assert (out / "hard" / "final" / "model.safetensors").stat().st_mtime_ns == stamp


def test_ablate_rejects_a_missing_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ablate", "--out", str(tmp_path / "abl"), "--base", str(tmp_path / "nope")]) == 2
    assert "no such base model folder" in capsys.readouterr().err


def _rows(hard: float, inbatch: float) -> list[Row]:
    return [Row("b", "mean R@5, in-batch negatives only", inbatch, "", "b:inbatch"),
            Row("b", "mean R@5, + 2 hard negatives", hard, "", "b:hard"),
            Row("c", "composed (task 7) R@5, retrieval only", 40.0, "", "c:before")]


def test_ablate_seeds_runs_each_seed_in_its_folder_and_pairs_the_effects(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from umr.ablation import run as run_module
    from umr.ablation.config import AblationConfig
    from umr.ablation.seeds import run_seeds

    seen: list[tuple[int, Path]] = []
    by_seed = {0: _rows(50.0, 45.0), 1: _rows(40.0, 42.0), 4: _rows(60.0, 55.0)}

    def fake(cfg: AblationConfig, console: object = None) -> list[Row]:
        seen.append((cfg.seed, cfg.out))
        return by_seed[cfg.seed]

    monkeypatch.setattr(run_module, "run_ablation", fake)
    md = run_seeds(AblationConfig(out=tmp_path / "abl", base="tiny:u-marvel@64x2+pre"), [0, 1, 4])
    assert seen == [(s, tmp_path / "abl" / f"seed-{s}") for s in (0, 1, 4)]
    agg = json.loads((tmp_path / "abl" / "seeds.json").read_text())["aggregate"]
    effect = agg["effect:b:hard"]
    assert effect["values"] == {"0": 5.0, "1": -2.0, "4": 5.0}  # paired per seed, not mean(hard) − mean(inbatch)
    assert effect["mean"] == pytest.approx(8 / 3) and effect["sd"] == pytest.approx(statistics.stdev([5, -2, 5]))
    assert "effect:c:rerank" not in agg  # no "after" row: no effect invented
    text = md.read_text()
    assert "| (b) hard negatives − in-batch only: mean R@5 | 2.7 ± 4.0 | 0: 5.0, 1: -2.0, 4: 5.0 | positive on 2/3" \
        in text
    assert "tiny:u-marvel@64x2+pre" in text


def test_ablate_takes_a_tiny_spec_or_a_folder_as_base_and_rejects_a_negative_fn_skip(tmp_path: Path) -> None:
    from umr.ablation.config import AblationConfig
    from umr.errors import UmrError

    AblationConfig(base="tiny:u-marvel@64x2+pre")  # a tiny spec needs no folder: it is built when loaded
    AblationConfig(base=str(tmp_path))  # a trained run's final/
    with pytest.raises(FileNotFoundError, match=r"^u-marvel@64x2\+pre: no such base model folder"):
        AblationConfig(base="u-marvel@64x2+pre")  # the tiny: prefix forgotten: neither a spec nor a folder
    with pytest.raises(UmrError, match="fn_skip must be ≥ 0"):
        AblationConfig(fn_skip=-1)


def test_ablate_cli_seeds_option_reaches_every_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from umr.ablation import run as run_module
    from umr.ablation.config import AblationConfig

    seen: list[tuple[int, int, str | None]] = []

    def fake(cfg: AblationConfig, console: object = None) -> list[Row]:
        seen.append((cfg.seed, cfg.fn_skip, cfg.base))
        return _rows(30.0 + cfg.seed, 30.0)

    monkeypatch.setattr(run_module, "run_ablation", fake)
    out = tmp_path / "abl"
    assert main(["ablate", "--out", str(out), "--seeds", "4", "1", "4", "--fn-skip", "2",
                 "--base", "tiny:u-marvel@64x2+pre"]) == 0
    assert seen == [(4, 2, "tiny:u-marvel@64x2+pre"), (1, 2, "tiny:u-marvel@64x2+pre")]  # a repeated seed runs once
    assert str(out / "seeds.md") in capsys.readouterr().out
    assert json.loads((out / "seeds.json").read_text())["aggregate"]["effect:b:hard"]["values"] == {"4": 4.0,
                                                                                                     "1": 1.0}


@pytest.mark.parametrize("overrides, seed", [({}, 3), ({"seed": 7}, 7)])
def test_ablation_stage_trains_with_the_world_seed_unless_told_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict, seed: int) -> None:
    """The probes vary a stage's training seed alone (data order) to measure the training's own noise."""
    import umr.train.stages as stages
    from umr.ablation.config import AblationConfig
    from umr.ablation.workspace import Workspace

    class Seen(Exception):
        pass

    def fake_trainer(cfg):  # stop at the config: only the seed it carries matters here
        raise Seen(cfg.optim.seed)

    monkeypatch.setattr(stages, "make_trainer", fake_trainer)
    ws = Workspace(AblationConfig(out=tmp_path / "abl", size="tiny", seed=3, base="tiny:u-marvel@64x2+pre"))
    with pytest.raises(Seen) as got:
        ws.train("stage", "tiny:u-marvel@64x2+pre", str(tmp_path / "pairs.jsonl"), 2, **overrides)
    assert got.value.args == (seed,)
