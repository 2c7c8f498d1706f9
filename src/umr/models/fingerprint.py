"""A cheap fingerprint of a model folder's weights, so an index can tell its own model from another one with the
same folder name (two runs' `final/`) without hashing gigabytes: file names and sizes, and 16 slices of 64 KiB
spread evenly through each weight file (a fine-tune changes the layers everywhere, so the slices differ)."""

from __future__ import annotations

import hashlib
from pathlib import Path

SLICES, SLICE = 16, 64 * 1024
WEIGHT_FILES = ("*.safetensors", "*.bin")


def weights_fingerprint(folder: str | Path) -> str | None:
    """16 hex digits, or None when `folder` is not a local folder holding weight files (e.g. a bare hub id)."""
    root = Path(folder)
    if not root.is_dir():
        return None
    files = sorted({p for pattern in WEIGHT_FILES for p in root.glob(pattern) if p.is_file()})
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size};".encode())
        with path.open("rb") as fh:
            for i in range(SLICES):
                fh.seek(max(0, (size - SLICE) * i // max(1, SLICES - 1)))
                digest.update(fh.read(SLICE))
    return digest.hexdigest()[:16]
