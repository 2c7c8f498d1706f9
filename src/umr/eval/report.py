"""Results of an eval run as a terminal table (rich), results.json, results.csv and results.md."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from umr.eval.mbeir import MBEIR_16, EvalReport
from umr.eval.published import published_for

COLUMNS = ("set", "task", "queries", "pool", "R@1", "R@5", "R@10", "R@20", "R@50", "MRR@10", "NDCG@10", "headline",
           "no-pos", "wrong-mod@k", "wrong-mod@1")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def rows(report: EvalReport) -> list[list[str]]:
    """One row per eval set, then the average; percentages with one decimal, as papers print them."""
    out = []
    for r in report.results:
        m = r.metrics
        out.append([r.name, str(r.task_id), str(m.n_queries), str(r.n_pool),
                    *(_pct(m.recall.get(k)) for k in (1, 5, 10, 20, 50)), _pct(m.mrr10), _pct(m.ndcg10),
                    f"R@{r.headline_k} {_pct(r.headline)}", str(m.n_no_positive_in_pool), _pct(r.wrong_modality),
                    _pct(r.wrong_modality_top1)])
    avg = report.mbeir16_average
    label = "M-BEIR avg (16)" if avg is not None else f"average ({len(report.results)})"
    out.append([label, "", "", "", "", "", "", "", "", "", "", _pct(avg if avg is not None else report.average),
                "", "", ""])
    return out


def comparison(report: EvalReport) -> list[list[str]]:
    """Published numbers beside ours (real M-BEIR only): model, source, per-set figures where known, average."""
    pool = report.options["pool"]
    ours = {r.name: r.headline for r in report.results}
    table = [["ours", "this run", *(_pct(ours.get(n)) for n in MBEIR_16), _pct(report.mbeir16_average)]]
    for p in published_for(pool):
        per = p.per_task.get(pool, {})
        table.append([p.model, p.source, *(f"{per[n]:.1f}" if n in per else "–" for n in MBEIR_16),
                      f"{p.average[pool]:.1f}"])
    return table


def comparison_by_set(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    """The published comparison with one row per set (ours first, then each paper's number): narrow enough for
    a terminal and a Markdown page. Returns (header, rows); the last row is the 16-set average."""
    table = comparison(report)
    header = ["set", *(r[0] for r in table)]
    body = [[name, *(r[2 + i] for r in table)] for i, name in enumerate(MBEIR_16)]
    return header, body + [["avg (16)", *(r[-1] for r in table)]]


def rich_table(title: str, header: list[str], body: list[list[str]], label: str) -> Any:
    """A rich Table of string rows: the `label` column left-aligned, the numbers right-aligned."""
    from rich.table import Table

    table = Table(title=title)
    for c in header:
        table.add_column(c, justify="left" if c == label else "right")
    for row in body:
        table.add_row(*row)
    return table


def print_report(report: EvalReport, compare: bool = False) -> None:
    from rich.console import Console

    console = Console(width=max(Console().width, 180))  # wide enough for 15 columns when piped
    title = f"{report.model.get('name', 'model')} on {report.data} ({report.options['pool']} pool, " \
            f"{report.options['split']})"
    console.print(rich_table(title, list(COLUMNS), rows(report), "set"))
    t = report.timings
    console.print(f"time: {t.get('total_s', 0):.1f}s (pool embed {t.get('embed_pool_s', 0):.1f}s, queries "
                  f"{t.get('embed_queries_s', 0):.1f}s, search {t.get('search_s', 0):.1f}s)")
    rule = report.options.get("ties", "pool-order")
    other = "pessimistic" if rule == "pool-order" else "pool-order"
    for r in report.results:
        if r.alt_metrics is not None:  # ties changed a number: show the other rule's headline beside ours
            console.print(f"ties: {r.name} R@{r.headline_k} {_pct(r.headline)} ({rule}), "
                          f"{_pct(r.alt_headline)} ({other}); MRR@10 {_pct(r.metrics.mrr10)} vs "
                          f"{_pct(r.alt_metrics.mrr10)}")
    if compare:
        if report.mbeir16_average is None:
            console.print("--compare published: the papers' numbers are for the 16 real M-BEIR sets; this data "
                          "is not real M-BEIR (or not all 16 sets were run), so there is nothing to compare.")
            return
        header, body = comparison_by_set(report)
        title = f"Published M-BEIR numbers ({report.options['pool']} pool, headline recall, %)"
        console.print(rich_table(title, header, body, "set"))
        console.print("sources: " + "; ".join(sorted({p.source for p in published_for(report.options["pool"])})))


def write_results(report: EvalReport, out_dir: str | Path, compare: bool = False) -> list[Path]:
    """results.json (everything), results.csv and results.md (the table) in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    if compare and report.mbeir16_average is not None:
        data["published"] = comparison(report)
    (out / "results.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    table = rows(report)
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(table)
    md = [f"# {report.model.get('name', 'model')} — {report.options['pool']} pool, {report.options['split']}",
          "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    md += ["| " + " | ".join(r) + " |" for r in table]
    if compare and report.mbeir16_average is not None:
        header, body = comparison_by_set(report)
        md += ["", "## Published numbers", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(r) + " |" for r in body]
    (out / "results.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return [out / "results.json", out / "results.csv", out / "results.md"]
