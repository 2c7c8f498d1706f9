"""Reading JSONL files line by line, with errors that start `file:line:` so users can fix the exact line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class FileLineError(ValueError):
    """A line of a file is unusable; the message starts with `file:line:`."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = Path(path), line, problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


def iter_jsonl(path: str | Path, error: type[FileLineError] = FileLineError) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a malformed line raises `error` naming file and line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(path, lineno, f"malformed JSON ({exc.msg}); fix or remove the line") from exc
            if not isinstance(obj, dict):
                raise error(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj
