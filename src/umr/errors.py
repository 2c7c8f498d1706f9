"""`UmrError`: the base of every error umr raises about its input — a file, an item, a setting, a model name.

Its message names the thing (path, line, qid/did, option) and what to do, so the `umr` command prints it as one
line (exit code 2); any other exception is a bug and keeps its traceback. It is a ValueError, so callers that
caught ValueError before still catch it.
"""

from __future__ import annotations


class UmrError(ValueError):
    """Bad input, files or settings; the message says which and what to do."""
