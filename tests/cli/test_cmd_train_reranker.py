"""`umr train-reranker --style`: the judge records the prompt style it was trained with; an unknown style is a
one-line error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umr.cli import main
from umr.items import Item
from umr.train.data import Pair, write_pairs


@pytest.fixture()
def pairs(tmp_path: Path) -> Path:
    rows = [Pair(Item(text=f"a {c} circle"), Item(text=c), [Item(text=o) for o in ("red", "blue") if o != c])
            for c in ("red", "blue")]
    return write_pairs(tmp_path / "pairs.jsonl", rows)


def test_the_judge_records_its_style(tiny_model: str, pairs: Path, tmp_path: Path) -> None:
    out = tmp_path / "rr"
    assert main(["train-reranker", "--model", tiny_model, "--data", str(pairs), "--out", str(out), "--max-steps",
                 "1", "--batch-size", "2", "--style", "lamra", "--device", "cpu"]) == 0
    assert json.loads((out / "final" / "umr_reranker.json").read_text())["style"] == "lamra"


def test_an_unknown_style_is_named(tiny_model: str, pairs: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    assert main(["train-reranker", "--model", tiny_model, "--data", str(pairs), "--out", str(tmp_path / "rr"),
                 "--style", "lamra-rank", "--device", "cpu"]) == 2
    assert "unknown re-ranker style 'lamra-rank'; one of caption, lamra, u-marvel, umr" in capsys.readouterr().err


def test_fewer_queries_than_a_batch_is_named(tiny_model: str, pairs: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    """Two mined queries and a batch of 8 trained 0 steps and wrote an untrained judge."""
    out = tmp_path / "rr"
    assert main(["train-reranker", "--model", tiny_model, "--data", str(pairs), "--out", str(out),
                 "--batch-size", "8", "--device", "cpu"]) == 2
    assert "2 mined queries make no full batch of batch_size 8; set batch_size ≤ 2" in capsys.readouterr().err
    assert not (out / "final").exists()
