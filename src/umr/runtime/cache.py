"""Where umr keeps what it builds once and reuses: tiny models, rebuilt pretrained bases ($UMR_CACHE, else
~/.cache/umr)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("UMR_CACHE", Path.home() / ".cache" / "umr"))
