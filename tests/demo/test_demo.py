"""`umr demo --size tiny`: every step runs, the report holds the tables, plots and example images, a rerun
reuses every step with the same numbers, and a failing step is named while finished steps are kept."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from umr.cli import main

# one xdist worker runs the whole module (make test: --dist loadgroup), so the demo runs once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--size", "tiny", "--out", str(out)]) == 0
    return out


def test_report_holds_tables_plots_and_example_images(demo_dir: Path) -> None:
    report = (demo_dir / "report" / "report.html").read_text()
    for section in ("Recall per eval set against the baselines", "Ablation", "Training curves", "Example queries"):
        assert section in report
    for model in ("u-marvel", "plain", "clip-sf", "text"):
        assert f"<th>{model}</th>" in report
    # re-ordering the top N cannot change R@K for K >= N, so the re-ranked run is no column of the recall table;
    # the ablation shows what it can change
    assert "<th>u-marvel+rerank</th>" not in report
    assert report.count("mean R@1 / MRR@10 / composed (task 7) R@1") == 2
    assert report.count("<tr><td>") >= 16 + 1 + 4  # 16 eval sets + the mean row, and the ablation rows
    for what in ("modality bias", "hard negatives", "distillation", "re-ranking"):
        assert f"<td>{what}</td>" in report
    assert "teacher's top-1 / the student's own on the" in report  # the distillation teacher's verdict
    plots = re.findall(r"<img class=plot src='data:image/png;base64,([A-Za-z0-9+/=]+)'", report)
    assert len(plots) == 3 and all(len(p) > 1000 for p in plots)
    for png in ("recall.png", "training.png", "stages.png"):
        assert (demo_dir / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    examples = report.split("Example queries", 1)[1]
    assert examples.count("<div class='card") >= 3 * 5  # ≥ 3 queries with their top 5
    assert examples.count("src='data:image/png;base64,") >= 3  # retrieved or query images, inlined
    assert "src='/" not in report and "src='http" not in report  # self-contained


def test_rerun_reuses_every_step_with_the_same_numbers(demo_dir: Path, capsys: pytest.CaptureFixture) -> None:
    before = json.loads((demo_dir / "steps.json").read_text())
    assert main(["demo", "--size", "tiny", "--out", str(demo_dir)]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long step titles
    assert printed.count("done earlier") == len(before)
    after = json.loads((demo_dir / "steps.json").read_text())
    assert after == before
    log = " ".join((demo_dir / "baselines.log").read_text().split())  # the second process reused its steps too
    assert log.count("done earlier") == len(json.loads((demo_dir / "steps-baselines.json").read_text()))
    summary = json.loads((demo_dir / "report" / "summary.json").read_text())
    assert summary["eval"]["u-marvel"]["average"] == before["eval-u-marvel"]["result"]["average"]


def test_a_failing_step_is_named_and_finished_steps_are_kept(demo_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(demo_dir, tmp_path / "run")
    demo_dir = tmp_path / "run"  # a copy: the other tests keep the finished run
    steps = json.loads((demo_dir / "steps.json").read_text())
    steps.pop("index")
    steps.pop("report")
    (demo_dir / "steps.json").write_text(json.dumps(steps))

    def broken(*args: object, **kw: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("umr.demo.examples.build_index", broken)
    assert main(["demo", "--size", "tiny", "--out", str(demo_dir)]) == 1
    printed = " ".join(capsys.readouterr().out.split())
    assert "'index' failed" in printed and "disk full" in printed and "rerun the same command" in printed
    kept = json.loads((demo_dir / "steps.json").read_text())
    assert set(kept) == set(steps)  # everything that had finished is still there
    assert "OSError: disk full" in (demo_dir / "steps-failed.txt").read_text()


def test_every_model_trains_on_the_same_budget(demo_dir: Path) -> None:
    from umr.demo.pipeline import embedder_budget, load_plan

    plan = load_plan("tiny")
    assert plan["parallel"] == ["text", "plain"]
    budget = embedder_budget(plan["staged"])
    steps = json.loads((demo_dir / "steps.json").read_text())
    chain = steps["train-u-marvel"]["result"]["steps"]
    # a distill stage that declined its teacher trains nothing; the baselines, trained beside the chain, keep the
    # plan's budget, so they never get fewer steps than the chain
    planned = {stage["name"]: stage["max_steps"] for stage in plan["staged"]["stages"]}
    skipped = [name for name, v in steps["train-u-marvel"]["result"]["teacher_verdicts"].items() if v["skipped"]]
    assert all(chain[name] == 0 for name in skipped)
    trained = sum(n for stage, n in chain.items() if stage != "reranker")
    assert trained + sum(planned[name] for name in skipped) == budget
    # the plan's `parallel` baselines ran in the second process, the others after the chain in this one
    second = json.loads((demo_dir / "steps-baselines.json").read_text())
    assert {k for k in second if k.startswith("train-")} == {"train-text", "train-plain"}
    assert not {k for k in steps if k in ("train-text", "train-plain")}
    both = {**steps, **second}
    for name in ("plain", "clip-sf", "text"):
        assert both[f"train-{name}"]["result"]["steps"] == {"": budget}


def test_a_fresh_run_with_the_same_seed_gives_the_same_numbers(demo_dir: Path, tmp_path: Path) -> None:
    """Not a resume: a second run from nothing (new world, new training, new evaluations) in another folder."""
    again = tmp_path / "again"
    assert main(["demo", "--size", "tiny", "--out", str(again)]) == 0
    first, second = (json.loads((d / "report" / "summary.json").read_text()) for d in (demo_dir, again))
    assert set(first["eval"]) == set(second["eval"]) >= {"u-marvel", "plain", "clip-sf", "text"}
    for name, result in first["eval"].items():
        assert second["eval"][name]["sets"] == result["sets"], name  # every set's recall, every model
    for name in ("u-marvel", "plain", "clip-sf", "text"):
        logs = [[row["loss"] for row in _losses(d, name)] for d in (demo_dir, again)]
        assert logs[0] == logs[1] and len(logs[0]) > 0, name  # the training curves, to the last digit


def _losses(out: Path, name: str) -> list[dict]:
    from umr.train.run_log import read_log

    rows = []
    for log in sorted((out / "train" / name).glob("**/log.jsonl")):
        rows += [r for r in read_log(log.parent) if "loss" in r]
    return rows


def test_reranking_the_top_n_leaves_the_headline_and_moves_only_the_order(demo_dir: Path) -> None:
    summary = json.loads((demo_dir / "report" / "summary.json").read_text())
    plain, rr = summary["eval"]["u-marvel"], summary["eval"]["u-marvel+rerank"]
    assert summary["plan"]["eval"]["rerank"] <= min(s["k"] for s in plain["sets"].values())
    assert {n: s["headline"] for n, s in rr["sets"].items()} == {n: s["headline"] for n, s in plain["sets"].items()}
    for result in (plain, rr):  # the means the ablation rows print are the means of the sets
        assert result["r1"] == pytest.approx(sum(s["r1"] for s in result["sets"].values()) / 16, abs=0.01)


def test_the_chains_judge_is_the_pretrained_captioner_trained_on(demo_dir: Path) -> None:
    """The re-ranker stage names its own start (tiny:judge@64x2+pre) while the chain's embedder mines its data:
    the judge it writes scores by caption likelihood, and its weights moved from the shipped ones."""
    from safetensors.torch import load_file

    from umr.models.registry import tiny_model_dir

    stage = next((demo_dir / "train" / "u-marvel").glob("stage-*-reranker"))
    saved = json.loads((stage / "final" / "umr_reranker.json").read_text())
    assert saved["style"] == "caption"
    shipped = load_file(tiny_model_dir("judge@64x2+pre") / "model.safetensors")
    trained = load_file(stage / "final" / "model.safetensors")
    assert shipped.keys() == trained.keys()
    moved = [k for k in shipped if not (shipped[k] == trained[k]).all()]
    assert moved and all("visual" not in k for k in moved)  # the LLM trained, the tower frozen


def test_the_index_records_its_model_and_refuses_another(demo_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from umr.index.base import read_index_json

    info = read_index_json(demo_dir / "index")["info"]  # was {}: any 64-d model ran against it silently
    assert info["model"]["name"] == "u-marvel" and Path(info["model_spec"]).name == "final"
    query = ["search", "--index", str(demo_dir / "index"), "--text", "a red circle"]
    assert main([*query, "--model", "tiny:u-marvel@64x2"]) == 2
    assert "index/model mismatch" in capsys.readouterr().err
    assert main([*query, "-k", "3", "--json"]) == 0  # the recorded model is the default
    assert len(json.loads(capsys.readouterr().out)["results"]) == 3


def test_global_runs_carry_the_task_modality_only_run(demo_dir: Path) -> None:
    """The same vectors over the global pool's candidates of the task's modality: removing other-modality
    candidates can only lift a positive, so every set's recall is at least the global one."""
    summary = json.loads((demo_dir / "report" / "summary.json").read_text())
    assert set(summary["global"]) == set(summary["plan"]["eval"]["global"])
    for name, g in summary["global"].items():
        same = g["same_modality"]["sets"]
        assert set(same) == set(g["sets"])
        for s, info in g["sets"].items():
            assert same[s]["headline"] >= info["headline"], (name, s)
            assert same[s]["wrong_modality"] is None
