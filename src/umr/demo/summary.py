"""The demo's summary, read by the pipeline (printing), the report and the multi-seed table: which models the
tables compare, the distillation verdict, the console summary. A module of its own, below all three, so the
pipeline and the report do not import each other."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

MAIN = "u-marvel"  #: the staged model's name in tables


def model_columns(summary: dict[str, Any]) -> list[str]:
    """The models the tables compare: the chain's final model and the baselines. Not the chain's stages (the
    ablation shows them) nor the re-ranked run: re-ordering the top N cannot change R@K for K >= N."""
    return [n for n in summary["eval"] if not n.startswith("stage:") and n != f"{MAIN}+rerank"]


def print_summary(summary: dict[str, Any], console: Console) -> None:
    ev = summary["eval"]
    names = model_columns(summary)
    table = Table(title="mean headline recall over the 16 test sets, local pools (R@5; R@10 for the fashion sets)")
    table.add_column("model")
    table.add_column("mean", justify="right")
    table.add_column("global pool", justify="right")
    table.add_column("global, task modality only", justify="right")
    table.add_column("wrong modality (global top-10)", justify="right")
    for name in names:
        g = summary["global"].get(name) or {}
        same = g.get("same_modality")
        table.add_row(name, f"{ev[name]['average']:.1f}", f"{g['average']:.1f}" if g else "",
                      f"{same['average']:.1f}" if same else "",
                      f"{g['wrong_modality']:.1f}%" if g.get("wrong_modality") is not None else "")
    console.print(table)
    rr = ev.get(f"{MAIN}+rerank")
    if rr and "r1" in rr:
        console.print(f"re-ranking {MAIN}'s top {summary['plan']['eval']['rerank']}: mean R@1 {ev[MAIN]['r1']:.1f} → "
                      f"{rr['r1']:.1f}, MRR@10 {ev[MAIN]['mrr10']:.1f} → {rr['mrr10']:.1f}")
    index = summary["index"]
    console.print(f"report: [bold]{summary['report']}[/]  (self-contained HTML; plots as PNG beside it)")
    console.print(f"browse it: umr serve --index {index['path']} --model {index['model']}  then open "
                  "http://127.0.0.1:8000")


def distill_verdict(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The teacher verdict the chain's distill stage recorded (umr.train.stages), or None: no check ran."""
    return summary.get("models", {}).get(MAIN, {}).get("teacher_verdicts", {}).get("distill")
