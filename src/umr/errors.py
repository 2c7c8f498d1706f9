"""`UmrError`: the base of every error umr raises about its input — a file, an item, a setting, a model name.

Its message names the thing (path, line, qid/did, option) and what to do, so the `umr` command prints it as one
line (exit code 2); any other exception is a bug and keeps its traceback. It is a ValueError, so callers that
caught ValueError before still catch it.
"""

from __future__ import annotations


class UmrError(ValueError):
    """Bad input, files or settings; the message says which and what to do."""


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the path and the reason ("out/x.npy: No space left on device"); a message made by
    umr itself (no errno) is kept as it is."""
    if exc.errno is None or not exc.strerror:
        return str(exc)
    where = exc.filename if exc.filename is not None else ""
    return f"{where}: {exc.strerror}" if where else exc.strerror
