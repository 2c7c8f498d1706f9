"""Reading JSONL files line by line, with errors that start `file:line:` so users can fix the exact line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from umr.errors import UmrError


class FileLineError(UmrError):
    """A line of a file is unusable; the message starts with `file:line:`."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = Path(path), line, problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


def iter_jsonl(path: str | Path, error: type[FileLineError] = FileLineError) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a malformed line raises `error` naming file and line.

    Lines are decoded one at a time (not the file as a whole) so that a byte that is not UTF-8 is reported on
    its own line; a UTF-8 byte-order mark on the first line is ignored.
    """
    for lineno, _, obj in iter_jsonl_at(path, error):
        yield lineno, obj


def iter_jsonl_at(path: str | Path, error: type[FileLineError] = FileLineError,
                  ) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """`iter_jsonl` with each line's byte offset: (line number, offset, object), so a reader can keep offsets
    instead of objects and seek back to a line later (`umr.data.pool_columns`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise error(path, None, "is a directory; give a JSONL file (one JSON object a line)")
    offset = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            at, offset = offset, offset + len(raw)
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise error(path, lineno, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                            "save the file as UTF-8") from exc
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(path, lineno, f"malformed JSON ({exc.msg}); fix or remove the line") from exc
            except RecursionError as exc:  # thousands of nested brackets: json gives up on the depth
                raise error(path, lineno, "JSON nested too deeply; fix or remove the line") from exc
            if not isinstance(obj, dict):
                raise error(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
            yield lineno, at, obj
