"""`umr demo --seeds`: per-seed measures by stable keys, mean ± sample sd over seeds with per-seed effects, the
seeds.json / seeds.md report, and the CLI end to end on the tiny plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from umr.cli import main
from umr.demo import DemoStepError
from umr.demo.seeds import aggregate, seed_measures, sign_note, write_seeds_report


def _summary(local: float, plain: float = 10.0, instruct: float = 8.0, hard: float = 9.0,
             glob: float | None = 6.0, rerank: bool = True) -> dict[str, Any]:
    """A run_demo summary with only the fields the measures read."""
    ev: dict[str, Any] = {"stage:instruct": {"average": instruct}, "stage:hard": {"average": hard},
                          "u-marvel": {"average": local, "r1": 5.0, "mrr10": 7.0},
                          "plain": {"average": plain}, "clip-sf": {"average": 11.0}}
    if rerank:
        ev["u-marvel+rerank"] = {"average": local, "r1": 6.5, "mrr10": 6.0}
    g = {"plain": {"average": 4.0, "wrong_modality": 50.0}, "clip-sf": {"average": 5.0, "wrong_modality": None}}
    if glob is not None:
        g["u-marvel"] = {"average": glob, "wrong_modality": 30.0}
    return {"eval": ev, "global": g}


def test_seed_measures_reads_every_number_and_takes_effects_per_seed() -> None:
    m = seed_measures(_summary(12.0))
    assert m["local:u-marvel"] == m["stage:final"] == 12.0
    assert m["local:plain"] == 10.0 and m["local:clip-sf"] == 11.0
    assert m["global:u-marvel"] == 6.0 and m["wrong:u-marvel"] == 30.0 and m["wrong:plain"] == 50.0
    assert "wrong:clip-sf" not in m  # no wrong-modality share recorded
    assert not any(k.endswith(("+rerank", "stage:instruct")) and k.startswith("local:") for k in m)
    assert (m["stage:instruct"], m["stage:hard"]) == (8.0, 9.0)
    assert (m["r1:before"], m["r1:after"], m["mrr10:before"], m["mrr10:after"]) == (5.0, 6.5, 7.0, 6.0)
    assert m["effect:hard"] == 1.0 and m["effect:distill"] == 3.0
    assert m["effect:rerank_r1"] == 1.5 and m["effect:rerank_mrr10"] == -1.0
    assert m["effect:staged_vs_plain_local"] == 2.0 and m["effect:staged_vs_plain_global"] == 2.0
    assert m["ratio:global_local"] == pytest.approx(0.5)
    assert m["effect:global_vs_best_baseline"] == 1.0  # 6 − max(plain 4, clip-sf 5)


def test_seed_measures_record_the_distillation_teacher_verdict() -> None:
    s = _summary(9.0)  # final = hard: the distill stage was skipped
    s["models"] = {"u-marvel": {"teacher_verdicts": {"distill": {"teacher_r1": 6.5, "student_r1": 7.25,
                                                                 "skipped": True}}}}
    m = seed_measures(s)
    assert m["teacher:gain"] == -0.75 and m["distill:skipped"] == 1.0 and m["effect:distill"] == 0.0
    assert "teacher:gain" not in seed_measures(_summary(9.0))  # a run without the verdict has no such row


def test_seed_measures_skips_keys_whose_inputs_are_missing() -> None:
    s = _summary(12.0, glob=None, rerank=False)
    del s["eval"]["stage:hard"]
    m = seed_measures(s)
    for key in ("global:u-marvel", "ratio:global_local", "effect:global_vs_best_baseline", "r1:before",
                "effect:rerank_r1", "stage:hard", "effect:hard", "effect:distill", "effect:staged_vs_plain_global"):
        assert key not in m, key
    assert m["stage:instruct"] == 8.0 and m["effect:staged_vs_plain_local"] == 2.0


def test_aggregate_mean_sample_sd_per_seed_differences_and_signs() -> None:
    per_seed = {s: seed_measures(_summary(local, plain=plain, hard=hard))
                for s, local, plain, hard in ((0, 10.0, 11.0, 9.0), (1, 12.0, 9.0, 9.0), (4, 14.0, 10.0, 9.0))}
    per_seed[1]["only:one"] = 3.0  # a key one seed lacks is dropped: its mean would cover other seeds
    agg = aggregate(per_seed)
    assert "only:one" not in agg
    final = agg["stage:final"]
    assert final["mean"] == pytest.approx(12.0) and final["sd"] == pytest.approx(2.0)  # sample sd (n − 1)
    assert final["values"] == {0: 10.0, 1: 12.0, 4: 14.0} and final["n"] == 3 and final["positive"] == 3
    # the effect is the per-seed difference: −1, 3, 4 → mean 2, sd of the differences, not of either side
    staged = agg["effect:staged_vs_plain_local"]
    assert staged["values"] == {0: -1.0, 1: 3.0, 4: 4.0}
    assert staged["mean"] == pytest.approx(2.0) and staged["sd"] == pytest.approx(7**0.5)
    assert staged["positive"] == 2 and sign_note(staged) == "positive on 2/3 seeds"
    distill = agg["effect:distill"]  # 10 − 9, 12 − 9, 14 − 9
    assert distill["values"] == {0: 1.0, 1: 3.0, 4: 5.0} and sign_note(distill) == "positive on 3/3 seeds"
    assert sign_note(agg["effect:rerank_mrr10"]) == "negative on 3/3 seeds"
    assert sign_note(agg["effect:hard"]) == "positive on 3/3 seeds"
    assert sign_note({"n": 2, "positive": 1, "values": {0: 1.0, 1: -1.0}}) == "mixed"
    zeros = {"n": 3, "positive": 0, "values": {0: 0.0, 1: -1.0, 2: 0.0}}
    assert sign_note(zeros) == "negative on 1/3 seeds, zero on 2"
    assert sign_note({"n": 2, "positive": 0, "values": {0: 0.0, 1: 0.0}}) == "zero on every seed"
    one = aggregate({7: {"a": 5.0}})
    assert one == {"a": {"mean": 5.0, "sd": 0.0, "values": {7: 5.0}, "positive": 1, "n": 1}}
    assert aggregate({}) == {}


def test_report_files_hold_every_seed_the_aggregate_and_labels(tmp_path: Path) -> None:
    per_seed = {0: seed_measures(_summary(10.0)), 1: seed_measures(_summary(12.0)), 4: seed_measures(_summary(14.0))}
    md = write_seeds_report(per_seed, aggregate(per_seed), tmp_path)
    doc = json.loads((tmp_path / "seeds.json").read_text())
    assert doc["seeds"] == [0, 1, 4] and set(doc["per_seed"]) == {"0", "1", "4"}
    assert doc["aggregate"]["stage:final"]["values"] == {"0": 10.0, "1": 12.0, "4": 14.0}
    text = md.read_text()
    assert "(`stage:final`) | 12.0 ± 2.0 | 0: 10.0, 1: 12.0, 4: 14.0 |  |" in text
    assert "hard negatives: stage hard − stage instruct (local mean)" in text
    assert "| 0.51 ± 0.09 | 0: 0.60, 1: 0.50, 4: 0.43 |" in text  # the ratio to 2 decimals: 6/10, 6/12, 6/14
    assert "positive on 3/3 seeds" in text


def test_seeds_cli_runs_each_seed_in_order_and_a_failing_seed_keeps_the_finished(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    calls: list[tuple[Path, int]] = []

    def fake_run_demo(out: Path, size: str, seed: int, jobs: int, console: object = None) -> dict[str, Any]:
        calls.append((Path(out), seed))
        if seed == 9:
            raise DemoStepError("eval-u-marvel", "OSError: disk full", Path(out) / "steps-failed.txt")
        return _summary(10.0 + seed)

    monkeypatch.setattr("umr.demo.run_demo", fake_run_demo)
    assert main(["demo", "--size", "tiny", "--out", str(tmp_path), "--seeds", "4", "0"]) == 0
    assert calls == [(tmp_path / "seed-4", 4), (tmp_path / "seed-0", 0)]
    assert json.loads((tmp_path / "seeds.json").read_text())["seeds"] == [4, 0]
    assert "mean ± sd" in " ".join(capsys.readouterr().out.split())
    calls.clear()
    assert main(["demo", "--size", "tiny", "--out", str(tmp_path / "b"), "--seeds", "0", "9", "1"]) == 1
    assert [s for _, s in calls] == [0, 9]  # stops at the failing seed
    printed = " ".join(capsys.readouterr().out.split())
    assert "seed 9" in printed and "disk full" in printed and "rerun the same command" in printed
    assert main(["demo", "--out", str(tmp_path), "--seeds", "1", "1"]) == 2  # a repeated seed only shrinks the sd
    assert "given more than once" in capsys.readouterr().err


def test_seed_and_seeds_together_are_refused(capsys: pytest.CaptureFixture) -> None:
    for argv in (["--seed", "0", "--seeds", "1", "2"], ["--seeds", "1", "--seed", "3"]):
        with pytest.raises(SystemExit) as exc:
            main(["demo", *argv])
        assert exc.value.code == 2
        assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.slow  # like test_demo.py; no xdist_group: it shares no fixture, so it may run beside that group
def test_seeds_cli_end_to_end_on_the_tiny_plan(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Two whole tiny demos (about a minute and a half each on a loaded 2-core machine): the one CLI test."""
    assert main(["demo", "--size", "tiny", "--out", str(tmp_path), "--seeds", "0", "1"]) == 0
    doc = json.loads((tmp_path / "seeds.json").read_text())
    assert doc["seeds"] == [0, 1] and set(doc["per_seed"]) == {"0", "1"}
    for seed in (0, 1):
        summary = json.loads((tmp_path / f"seed-{seed}" / "report" / "summary.json").read_text())
        assert summary["seed"] == seed
        assert doc["per_seed"][str(seed)]["stage:final"] == summary["eval"]["u-marvel"]["average"]
    assert doc["aggregate"]["stage:final"]["n"] == 2
    assert "±" in (tmp_path / "seeds.md").read_text()
    assert "seeds.md" in " ".join(capsys.readouterr().out.split())
