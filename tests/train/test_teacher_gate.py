"""`teacher: {require_better: true}`: a distill stage trains only when its teacher beats the chain's own cosine on
the teacher lists (McNemar, one-sided); otherwise the chain's model is left as it was and the verdict says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umr.items import Item
from umr.train.config import TrainConfig
from umr.train.distill import DistillRow, teacher_file_verdict, teacher_verdict
from umr.train.stages import run_stages, teacher_verdicts


def _row(i: int, teacher: list[float], cos: list[float], positive: int = 0) -> DistillRow:
    cands = [Item(text=f"c{i}-{j}") for j in range(len(teacher))]
    return DistillRow(str(i), Item(text=f"q{i}"), cands, teacher, positive, cos)


def test_verdict_counts_the_rows_where_only_one_side_is_right() -> None:
    right, wrong = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    # 12 lists only the teacher gets right, 1 only the student, 5 both, 2 neither
    pairs = [(right, wrong)] * 12 + [(wrong, right)] + [(right, right)] * 5 + [(wrong, wrong)] * 2
    verdict = teacher_verdict([_row(i, t, c) for i, (t, c) in enumerate(pairs)])
    assert (verdict["teacher_only"], verdict["student_only"], verdict["lists"]) == (12, 1, 20)
    assert verdict["teacher_r1"] == 85.0 and verdict["student_r1"] == 30.0
    assert verdict["p"] == pytest.approx(14 / 2**13, rel=1e-4)  # P(X ≥ 12), X ~ Bin(13, ½)
    assert verdict["better"]
    # the same lists with the sides swapped: the teacher is worse; and 6 wins of 11 are not significant
    swapped = teacher_verdict([_row(i, c, t) for i, (t, c) in enumerate(pairs)])
    assert swapped["teacher_only"] == 1 and not swapped["better"]
    close = [(right, wrong)] * 6 + [(wrong, right)] * 5
    assert not teacher_verdict([_row(i, t, c) for i, (t, c) in enumerate(close)])["better"]


def test_teacher_equal_to_the_student_is_not_better(tmp_path: Path) -> None:
    path = tmp_path / "teacher.jsonl"
    with path.open("w") as fh:
        for i in range(6):
            scores = [0.9, 0.8, 0.7]
            fh.write(json.dumps({"qid": str(i), "query": {"text": "q"}, "candidates": [{"text": f"c{j}"} for j in
                                 range(3)], "teacher": scores, "cos": scores, "positive": i % 3}) + "\n")
    verdict = teacher_file_verdict(path)
    assert verdict["p"] == 1.0 and not verdict["better"] and verdict["teacher_r1"] == verdict["student_r1"]


def test_a_teacher_file_without_the_students_cosines_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "teacher.jsonl"
    path.write_text(json.dumps({"qid": "q7", "query": {"text": "q"}, "candidates": [{"text": "a"}, {"text": "b"}],
                                "teacher": [0.9, 0.1], "positive": 0}) + "\n")
    with pytest.raises(ValueError, match="teacher row q7: no 'cos' scores"):
        teacher_file_verdict(path)


def _chain(world: Path, model: str, out: Path) -> TrainConfig:
    # no re-ranker: the teacher is the chain's own cosine, never better than itself
    return TrainConfig.from_dict({
        "model": model, "data": str(world), "output_dir": str(out), "batch_size": 4, "lr": 1e-3, "device": "cpu",
        "tasks": ["task0"], "log_every": 1,
        "stages": [
            {"name": "instruct", "max_steps": 2},
            {"name": "distill", "type": "distill", "max_steps": 1, "batch_by": "none",
             "teacher": {"top": 3, "max_per_set": 4, "require_better": True}},
            {"name": "after", "max_steps": 1},
        ]})


def test_chain_skips_a_distill_stage_whose_teacher_is_not_better(world: Path, tiny_gme_dir: str,
                                                                  tmp_path: Path) -> None:
    cfg = _chain(world, tiny_gme_dir, tmp_path / "run")
    final = run_stages(cfg)
    run = tmp_path / "run"
    assert not (run / "stage-1-distill" / "final").exists()
    verdict = teacher_verdicts(cfg)["distill"]
    assert verdict["skipped"] and verdict["teacher_only"] == verdict["student_only"] == 0
    # the stage after the skipped one starts from the model before it
    after = TrainConfig.from_yaml(run / "stage-2-after" / "train_config.yaml")
    assert after.model.model == str(run / "stage-0-instruct" / "final")
    assert final == run / "stage-2-after" / "final"
    # a resumed chain keeps the decision without rebuilding the teacher
    stamp = (run / "stage-1-distill" / "teacher_verdict.json").stat().st_mtime_ns
    assert run_stages(cfg, resume=True) == final
    assert (run / "stage-1-distill" / "teacher_verdict.json").stat().st_mtime_ns == stamp


def test_chain_distills_when_the_teacher_is_better(world: Path, tiny_gme_dir: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import umr.train.distill as distill

    def better(path: str | Path, alpha: float = 0.05) -> dict:
        return {"lists": 12, "teacher_r1": 90.0, "student_r1": 10.0, "p": 0.001, "better": True}

    monkeypatch.setattr(distill, "teacher_file_verdict", better)
    cfg = _chain(world, tiny_gme_dir, tmp_path / "run")
    run_stages(cfg)
    assert (tmp_path / "run" / "stage-1-distill" / "final").is_dir()
    assert teacher_verdicts(cfg)["distill"]["skipped"] is False
    after = TrainConfig.from_yaml(tmp_path / "run" / "stage-2-after" / "train_config.yaml")
    assert after.model.model == str(tmp_path / "run" / "stage-1-distill" / "final")
