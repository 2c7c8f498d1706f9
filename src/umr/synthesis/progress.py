"""Append-only JSONL progress files: every finished unit of work is one line, so a rerun skips it.

A crash can leave a half-written last line; it is ignored on load (that unit is simply redone).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class Progress:
    """Rows keyed by the values of `key_fields`; `add` appends and flushes at once."""

    def __init__(self, path: str | Path, key_fields: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.key_fields = key_fields
        self.rows: dict[tuple, dict[str, Any]] = {}
        if self.path.is_file():
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # the line a crash cut short
                    if isinstance(row, dict) and all(k in row for k in key_fields):
                        self.rows[self.key(row)] = row

    def key(self, row: dict[str, Any]) -> tuple:
        return tuple(row[k] for k in self.key_fields)

    def __contains__(self, key: tuple) -> bool:
        return key in self.rows

    def get(self, key: tuple) -> dict[str, Any] | None:
        return self.rows.get(key)

    def add(self, rows: Iterable[dict[str, Any]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
                self.rows[self.key(row)] = row
            fh.flush()
        return len(rows)
