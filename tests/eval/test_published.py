"""The published rows: each row's 16 cells average to the mean its source prints, so a mistyped cell shows up."""

from __future__ import annotations

import pytest

from umr.eval.mbeir import MBEIR_16
from umr.eval.published import PUBLISHED, published_for

ROWS = [(p, pool) for p in PUBLISHED for pool in p.per_task]
#: rows whose printed mean is not their cells' mean, with what the cells do average to
KNOWN = {("U-MARVEL+ (Qwen2-VL-7B, re-ranker)", "global"): 61.725}


@pytest.mark.parametrize(("row", "pool"), ROWS, ids=[f"{p.model}-{pool}" for p, pool in ROWS])
def test_cells_average_to_the_printed_mean(row, pool: str) -> None:
    cells = row.per_task[pool]
    assert list(cells) == list(MBEIR_16)
    mean = sum(cells.values()) / len(cells)
    if (row.model, pool) in KNOWN:
        assert mean == pytest.approx(KNOWN[row.model, pool], abs=1e-9) and "61.725" in row.note
        assert abs(mean - row.average[pool]) > 0.05
    else:  # 16 cells and the mean are each rounded to 0.1
        assert abs(mean - row.average[pool]) <= 0.05 + 1e-9, (row.model, pool, mean)


def test_rows_name_their_checkpoint_and_check() -> None:
    assert all(p.checkpoint and p.checked for p in PUBLISHED)
    local = {p.model for p in published_for("local")}
    assert local >= {"UniIR CLIP-SF (L)", "LamRA-Ret (7B)", "U-MARVEL (Qwen2-VL-7B)"}
    assert [p.model for p in PUBLISHED if p.checkpoint == "code-kunkun/LamRA-Ret"] == ["LamRA-Ret (7B)"]
