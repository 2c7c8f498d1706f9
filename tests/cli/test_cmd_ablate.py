"""`umr ablate` end to end at the smallest settings: every (a)–(e) row present with a finite number, the Markdown
table written, and a rerun resumes from the finished steps (same rows, nothing retrained)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

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
