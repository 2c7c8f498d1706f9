"""`umr eval-suite`: table on stdout, results.json / .csv / .md on disk, one-line errors naming file:line."""

import csv
import json

import pytest
from suite_fixtures import cirr, msrvtt

from umr.cli import main


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return {"cirr": cirr(root).root, "msrvtt": msrvtt(root).root}


def test_help_lists_every_suite_and_layout(capsys):
    with pytest.raises(SystemExit):
        main(["eval-suite", "--help"])
    out = capsys.readouterr().out
    for name in ("flickr30k", "coco", "circo", "cirr", "fashioniq", "mmeb", "msrvtt", "--video-mode",
                 "MSRVTT_JSFUSION_test.csv", "cap.rc2.val.json", "--ties", "--captions-per-image", "--caption-join",
                 "--split test1", "cirr_test1_recall_subset.json", "<Task>/*.parquet", "docs/suites.md"):
        assert name in out


def test_cirr_with_a_tiny_model_writes_json_csv_md(data, tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(["eval-suite", "--suite", "cirr", "--data", str(data["cirr"]), "--model", "tiny:clip-sf",
               "--out", str(out), "--batch-size", "8"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "Rs@1" in printed and "cirr val" in printed and "wrote" in printed
    result = json.loads((out / "results.json").read_text())
    assert result["suite"] == "cirr" and result["options"]["batch_size"] == 8
    metrics = result["rows"][0]["metrics"]
    assert set(metrics) == {"R@1", "R@5", "R@10", "R@50", "Rs@1", "Rs@2", "Rs@3", "avg"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    rows = list(csv.reader((out / "results.csv").open()))
    assert rows[0][:3] == ["row", "queries", "candidates"] and rows[1][:3] == ["cirr val", "4", "12"]
    assert float(rows[1][rows[0].index("R@50")]) == 100.0  # printed as a percentage
    assert (out / "results.md").read_text().startswith("# ")


def test_msrvtt_mean_mode_from_the_cli(data, tmp_path, capsys):
    rc = main(["eval-suite", "--suite", "msrvtt", "--data", str(data["msrvtt"]), "--model", "tiny:clip-sf",
               "--out", str(tmp_path), "--video-mode", "mean", "--frames", "2", "--no-instructions"])
    assert rc == 0
    assert "mean of 2 frames" in capsys.readouterr().out
    row = json.loads((tmp_path / "results.json").read_text())["rows"][0]
    assert 1.0 <= row["metrics"]["t2v MdR"] <= 4.0


def test_errors_are_one_line_with_file_and_line(data, tmp_path, capsys):
    bad = tmp_path / "cirr"
    bad.mkdir()
    (bad / "image_splits").mkdir()
    (bad / "image_splits" / "split.rc2.val.json").write_text('{"dev-0-0-img0": "./dev/0/missing.png"}')
    rc = main(["eval-suite", "--suite", "cirr", "--data", str(bad), "--model", "random", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "split.rc2.val.json: image 'dev-0-0-img0': file not found" in err and len(err.strip().splitlines()) == 1
    assert main(["eval-suite", "--suite", "cirr", "--data", str(data["cirr"]), "--model", "random",
                 "--max-queries", "0"]) == 2
    assert "--max-queries must be at least 1" in capsys.readouterr().err


def test_protocol_flags_reach_the_suite(data, tmp_path):
    out = tmp_path / "o"
    assert main(["eval-suite", "--suite", "cirr", "--data", str(data["cirr"]), "--model", "random", "--out", str(out),
                 "--ties", "pessimistic", "--captions-per-image", "0", "--caption-join", "clip4cir"]) == 0
    options = json.loads((out / "results.json").read_text())["options"]
    assert options["ties"] == "pessimistic" and options["captions_per_image"] is None
    assert options["caption_join"] == "clip4cir"
    with pytest.raises(SystemExit):  # argparse rejects an unknown rule
        main(["eval-suite", "--suite", "cirr", "--data", str(data["cirr"]), "--model", "random",
              "--ties", "optimistic"])
