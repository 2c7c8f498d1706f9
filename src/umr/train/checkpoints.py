"""Which checkpoint folders a run has: `Trainer.save_checkpoint` writes checkpoint-N.tmp, then renames it to
checkpoint-N, so a run killed mid-save leaves a .tmp folder that is neither resumed from nor counted as a
checkpoint when old ones are pruned."""

from __future__ import annotations

import shutil
from pathlib import Path


def finished_checkpoints(out: Path) -> list[Path]:
    """checkpoint-N folders, oldest first; a checkpoint-N.tmp (a save that was killed) is never one."""
    found = [p for p in out.glob("checkpoint-*") if p.is_dir() and p.name.partition("-")[2].isdigit()]
    return sorted(found, key=lambda p: int(p.name.partition("-")[2]))


def remove_partial_checkpoints(out: Path) -> None:
    """Delete the checkpoint-N.tmp folders of saves that were killed (called on resume, before training)."""
    for partial in out.glob("checkpoint-*.tmp"):
        shutil.rmtree(partial, ignore_errors=True)
