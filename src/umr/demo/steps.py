"""The demo's step runner: numbered steps with progress, results kept in OUT/steps.json, a failure named and kept.

A finished step's JSON result is stored as soon as it ends, so a rerun (or a rerun after a failure) skips straight
to the first unfinished step; the step functions themselves also resume (embedding caches, training checkpoints).
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console


class DemoStepError(RuntimeError):
    """A step failed; `step` names it and the message says why and how to resume."""

    def __init__(self, step: str, reason: str, details: Path) -> None:
        super().__init__(f"demo step '{step}' failed: {reason}. Finished steps are kept in {details.parent}; fix "
                         f"the cause and rerun the same command to resume from this step (details: {details})")
        self.step = step

    @classmethod
    def from_file(cls, details: Path) -> DemoStepError:
        """The error another process recorded in its `*-failed.txt` (the baselines' worker)."""
        step, reason = (details.read_text().splitlines() + ["?", "unknown error"])[:2]
        return cls(step, reason, details)


class Steps:
    def __init__(self, out: Path, total: int, console: Console | None = None, name: str = "steps") -> None:
        self.out, self.total, self.n = out, total, 0
        self.console = console or Console()
        self.path = out / f"{name}.json"
        self.failed = out / f"{name}-failed.txt"
        self.done: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def seconds(self) -> dict[str, float]:
        return {name: rec["seconds"] for name, rec in self.done.items()}

    def run(self, name: str, title: str, fn: Callable[[], Any]) -> Any:
        """Run `fn` as step `name` unless an earlier run finished it; returns its JSON-able result."""
        self.n += 1
        head = f"[bold cyan]{self.n}/{self.total}[/] {title}"
        if name in self.done:
            self.console.print(f"{head} [dim]— done earlier ({self.done[name]['seconds']:.0f} s), reused[/]")
            return self.done[name]["result"]
        self.console.rule(head, align="left")
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # every failure is reported the same way: which step, why, what is kept
            self.failed.write_text(f"{name}\n{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
            self.console.print(f"[bold red]✗ step {self.n}/{self.total} '{name}' failed:[/] "
                               f"{type(exc).__name__}: {exc}")
            raise DemoStepError(name, f"{type(exc).__name__}: {exc}", self.failed) from exc
        seconds = time.perf_counter() - t0
        self.done[name] = {"seconds": round(seconds, 2), "result": result}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.done, indent=1, default=str) + "\n")
        os.replace(tmp, self.path)
        self.failed.unlink(missing_ok=True)
        self.console.print(f"[green]✓[/] {title} [dim]({seconds:.1f} s)[/]")
        return result
