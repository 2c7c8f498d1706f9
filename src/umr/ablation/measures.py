"""Numbers of the ablation table, read from eval report dicts (`EvalReport.to_dict()`), and the table's files.

Reports are dicts rather than EvalReport objects so that a resumed run reads them back from evals/*.json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

Report = dict[str, Any]
SetFilter = Callable[[dict[str, Any]], bool]


@dataclass
class Row:
    """One line of the table: part (a)–(e), what was measured, its value (percent), and how it was measured."""

    part: str
    measure: str
    value: float
    note: str = ""
    key: str = ""  # stable name across settings (the measure text names k, N and the FN rule), for --seeds


def is_text_task(result: dict[str, Any]) -> bool:
    """Task 1 (text → text) is the text task of (e); every other task involves an image."""
    return int(result["task_id"]) == 1


def mean_recall(report: Report, k: int = 5, keep: SetFilter | None = None) -> float:
    """Mean R@k (percent) over the report's eval sets that `keep` accepts; nan when none does."""
    vals = [r["recall"][str(k)] for r in report["results"] if keep is None or keep(r)]
    return 100 * float(np.mean(vals)) if vals else float("nan")


def wrong_modality(report: Report) -> float:
    """Global pool: mean share (percent) of each set's top-k (bias_k, 10) whose modality the task did not ask for."""
    vals = [r["wrong_modality"] for r in report["results"] if r.get("wrong_modality") is not None]
    return 100 * float(np.mean(vals)) if vals else float("nan")


def query_counts(report: Report, keep: SetFilter | None = None) -> dict[str, int]:
    """Queries per eval set (name → count), for reading how many queries a difference is worth."""
    return {r["name"]: int(r["n_queries"]) for r in report["results"] if keep is None or keep(r)}


def resolution(counts: dict[str, int]) -> str:
    """What one query is worth in a mean R@k over these sets, e.g. '16 sets × 100 queries: 1 query = 0.06 points'."""
    if not counts:
        return "no sets"
    sizes = sorted(set(counts.values()))
    per_set = ", ".join(str(n) for n in sizes)
    point = 100 / (len(counts) * min(sizes))
    return f"{len(counts)} set{'s' * (len(counts) > 1)} × {per_set} queries: 1 query = {point:.2g} points"


def markdown(rows: Sequence[Row], header: str = "") -> str:
    """The table as Markdown (one decimal, as papers print them)."""
    lines = [header, ""] if header else []
    lines += ["| part | measure | value | resolution |", "|---|---|---:|---|"]
    for r in rows:
        value = "nan" if math.isnan(r.value) else f"{r.value:.1f}"
        lines.append(f"| ({r.part}) | {r.measure} | {value} | {r.note} |")
    return "\n".join(lines) + "\n"


def write_table(out: Path, rows: Sequence[Row], meta: dict[str, Any], header: str) -> tuple[Path, Path]:
    """ablation.json (rows + run settings and timings) and ablation.md in `out`."""
    js = out / "ablation.json"
    js.write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    md = out / "ablation.md"
    md.write_text(markdown(rows, header))
    return js, md


def print_table(rows: Sequence[Row], title: str, console: Any = None) -> None:
    """A rich table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=title)
    for col, justify in (("part", "left"), ("measure", "left"), ("value", "right"), ("resolution", "left")):
        table.add_column(col, justify=justify)
    for r in rows:
        table.add_row(f"({r.part})", r.measure, f"{r.value:.1f}", r.note)
    console.print(table)
