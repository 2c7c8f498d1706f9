"""Atomic file writes: write a temp file in the same directory, fsync, then `os.replace`.

`os.replace` is atomic on POSIX within one filesystem, so a reader (or a rerun after SIGKILL) sees either the
old file or the complete new one, never a torn write. Temp names carry the pid so concurrent ranks never share
one.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from umr.errors import UmrError


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temp files (`.NAME.tmp-PID-…`) that a killed process left in `folder`; returns them.

    A temp file whose writer is still running on this machine is kept, so a rank still writing is never robbed
    of its file. Callers run this only where no other machine writes into the folder at the same time.
    """
    removed = []
    for path in Path(folder).glob(".*.tmp-*"):
        pid = path.name.rpartition(".tmp-")[2].split("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)) or not path.is_file():
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) then move tmp over path; on any failure the temp file is removed and path untouched."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode())


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    atomic_write(path, write)


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_json(path: str | Path, what: str) -> Any:
    """Load a JSON file, turning a truncated or hand-broken file into an error that names it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UmrError(f"{what} {path} is not valid JSON ({exc.msg}, line {exc.lineno}); it was damaged "
                       "outside umr (umr writes it atomically) — restore it or rebuild") from exc
