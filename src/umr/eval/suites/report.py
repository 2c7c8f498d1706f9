"""A suite result as a terminal table (rich), results.json, results.csv and results.md.

Rates (recall, precision, mAP, RSUM) are printed as percentages with one decimal, as papers print them; ranks
(MdR, MnR) as they are. The JSON keeps the raw values (rates in [0, 1]).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from umr.eval.suites.runner import SuiteResult

RANK_METRICS = ("MdR", "MnR")


def fmt(metric: str, value: float | None) -> str:
    if value is None:
        return ""
    if metric.split()[-1] in RANK_METRICS:
        return f"{value:.1f}"
    return f"{100 * value:.1f}"


def table(result: SuiteResult) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the results table."""
    cols = result.columns
    header = ["row", "queries", "candidates", *cols]
    body = [[r.name, str(r.n_queries), str(r.n_candidates or ""), *(fmt(c, r.metrics.get(c)) for c in cols)]
            for r in result.rows]
    return header, body


def print_result(result: SuiteResult) -> None:
    from rich.console import Console

    from umr.eval.report import rich_table

    console = Console(width=max(Console().width, 160))
    header, body = table(result)
    console.print(rich_table(f"{result.model.get('name', 'model')} on {result.suite} ({result.data})", header, body,
                             "row"))
    for note in result.notes:
        console.print(f"note: {note}")
    times = ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in result.timings.items())
    console.print(f"time: {times}")


def write_results(result: SuiteResult, out_dir: str | Path) -> list[Path]:
    """results.json (everything, raw values), results.csv, results.md (the printed table) and any submission files
    (a test split's ranked lists for its server, `SuiteResult.submissions`), each under its own name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=1, sort_keys=True, default=str) + "\n",
                                      encoding="utf-8")
    header, body = table(result)
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(body)
    md = [f"# {result.model.get('name', 'model')} — {result.suite}", "", "| " + " | ".join(header) + " |",
          "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in body]
    (out / "results.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    paths = [out / "results.json", out / "results.csv", out / "results.md"]
    for name, content in result.submissions.items():  # a test split's files for its evaluation server
        (out / name).write_text(json.dumps(content) + "\n", encoding="utf-8")
        paths.append(out / name)
    return paths
