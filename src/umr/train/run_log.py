"""Where a training run reports its progress: OUTPUT_DIR/log.jsonl always, TensorBoard when asked.

    log = RunLog(out, tensorboard=True)     # True = OUTPUT_DIR/tensorboard, or a folder of your own
    log.write({"step": 10, "loss": 2.1, "tau": 0.05, "lr": 1e-4, "samples_per_s": 80.0})
    log.close()

Every numeric field of a record other than `step` becomes a TensorBoard scalar under `train/<field>`
(loss, tau, lr, samples_per_s), at the record's step. `tensorboard --logdir OUTPUT_DIR/tensorboard` shows them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_log(out: str | Path) -> list[dict[str, Any]]:
    """The records of OUTPUT_DIR/log.jsonl in order ([] before the first one); the last is the final step."""
    path = Path(out) / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


INSTALL_HINT = "TensorBoard logging needs the tensorboard package: pip install -c constraints.txt 'umr[tensorboard]'"


def tensorboard_dir(out: Path, option: bool | str | None) -> Path | None:
    """The TensorBoard folder a `tensorboard` option names (None = off); a relative path is under OUTPUT_DIR."""
    if option is None or option is False:
        return None
    if option is True:
        return out / "tensorboard"
    path = Path(str(option))
    return path if path.is_absolute() else out / path


def require_tensorboard() -> Any:
    """torch's SummaryWriter class; an ImportError saying how to install tensorboard when it is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch.utils.tensorboard imports the tensorboard package
        raise ImportError(INSTALL_HINT) from exc
    return SummaryWriter


class RunLog:
    """JSONL (+ TensorBoard) log of one run; a no-op on ranks other than 0."""

    def __init__(self, out: Path, tensorboard: bool | str | None = False, main: bool = True) -> None:
        self.main = main
        self.jsonl = (out / "log.jsonl").open("a", encoding="utf-8") if main else open(os.devnull, "w")  # noqa: SIM115
        folder = tensorboard_dir(out, tensorboard) if main else None
        try:
            self.writer = require_tensorboard()(log_dir=str(folder)) if folder is not None else None
        except ImportError:
            self.jsonl.close()
            raise

    def write(self, record: dict[str, Any]) -> None:
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        if self.writer is not None:
            step = int(record["step"])
            for key, value in record.items():
                if key not in ("step", "epoch") and isinstance(value, int | float):
                    self.writer.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        self.jsonl.close()
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
