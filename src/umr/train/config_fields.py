"""Type and range checks for config dataclass fields (TrainConfig, LoraSpec): a bad value stops with one line
naming the field, before any model is loaded.

Why coercion: YAML 1.1 (PyYAML) reads `lr: 1e-4` as the *string* "1e-4" (its float syntax wants a dot), and a
quoted `"4"` is a string too; both would end in a TypeError deep in torch. Numeric strings become numbers; an
integer field takes 4.0 but not 4.5; a value that cannot be one is an error. Why ranges: `epochs: -1` trained
0 steps and still printed "model written"; negative counts are never meant, nor `max_steps: 0`.
"""

from __future__ import annotations

import math
import typing
from typing import Any

from umr.errors import UmrError

#: field → (lowest allowed, highest allowed, whether the lowest is excluded); None = unbounded
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "epochs": (1, None, False), "max_steps": (1, None, False), "batch_size": (1, None, False),
    "micro_batch_size": (1, None, False), "num_negatives": (0, None, False), "save_every": (0, None, False),
    "keep_checkpoints": (1, None, False), "log_every": (1, None, False), "warmup_steps": (0, None, False),
    "lr": (0, None, True), "temperature_lr": (0, None, True), "weight_decay": (0, None, False),
    "grad_clip": (0, None, False), "temperature": (0, None, True), "distill_temperature": (0, None, True),
    "distill_hard_weight": (0, None, False), "mix_share": (0, 1, False), "max_image_tokens": (4, None, False),
    # LoraSpec
    "r": (1, None, False), "alpha": (0, None, True), "dropout": (0, 1, False),
}


def _number(name: str, value: Any, kind: type) -> int | float:
    """value as `kind` (int or float), from a number or a numeric string; ValueError naming the field else."""
    what = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UmrError(f"{name}: expected {what}, got {type(value).__name__} {value!r:.40}")
    if isinstance(value, str):
        try:
            value = float(value.strip()) if kind is float or not value.strip().lstrip("+-").isdigit() \
                else int(value.strip())
        except ValueError:
            raise UmrError(f"{name}: expected {what}, got {value!r:.40}") from None
    if not math.isfinite(value):
        raise UmrError(f"{name}: expected a finite number, got {value!r}")
    if kind is int:
        if value != int(value):
            raise UmrError(f"{name}: expected an integer, got {value!r}")
        return int(value)
    return float(value)


def check_fields(cls: type, values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`values` (a config mapping for dataclass `cls`) with numeric fields coerced and every range checked.

    Only fields typed int, float or bool (optionally `| None`) are touched; others pass through as they are.
    """
    hints = typing.get_type_hints(cls)
    out = dict(values)
    for name, value in values.items():
        hint = hints.get(name)
        if hint is None:
            continue
        kinds = set(typing.get_args(hint)) or {hint}
        optional = type(None) in kinds
        kinds.discard(type(None))
        label = prefix + name
        if value is None:
            if not optional and kinds <= {int, float, bool}:
                raise UmrError(f"{label}: must be set (got null)")
            continue
        if kinds == {bool}:
            if not isinstance(value, bool):
                raise UmrError(f"{label}: expected true or false, got {value!r:.40}")
        elif kinds in ({int}, {float}):
            value = out[name] = _number(label, value, kinds.pop())
        else:
            continue
        low, high, open_low = RANGES.get(name, (None, None, False))
        if low is not None and (value < low or (open_low and value == low)):
            raise UmrError(f"{label}: must be {'>' if open_low else '≥'} {low}, got {value!r}")
        if high is not None and value > high:
            raise UmrError(f"{label}: must be ≤ {high}, got {value!r}")
    return out
