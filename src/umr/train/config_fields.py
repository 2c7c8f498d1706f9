"""Type, choice and range checks for config dataclass fields (TrainConfig's parts, LoraSpec): a bad value stops
with one line naming the field, before any model is loaded.

Why coercion: YAML 1.1 (PyYAML) reads `lr: 1e-4` as the *string* "1e-4" (its float syntax wants a dot), and a
quoted `"4"` is a string too; both would end in a TypeError deep in torch. Numeric strings become numbers; an
integer field takes 4.0 but not 4.5; a value that cannot be one is an error. Why ranges: `epochs: -1` trained
0 steps and still printed "model written"; negative counts are never meant, nor `max_steps: 0`. Why choices: a
field typed `Literal[...]` (schedule, batch_by, type) takes one of its values, which the type itself lists, so
no field needs a hand-written check that could drift from it.
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
    "hard_negative_weight": (0, None, True),
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


def _choices(hint: Any) -> tuple[Any, ...] | None:
    """The values of a `Literal[...]` hint (also inside `Literal[...] | None`); None for any other hint."""
    for part in (hint, *typing.get_args(hint)):
        if typing.get_origin(part) is typing.Literal:
            return typing.get_args(part)
    return None


def check_fields(cls: type, values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`values` (a config mapping for dataclass `cls`) with numeric fields coerced, every range and choice checked.

    Only fields typed int, float, bool or Literal (optionally `| None`) are touched; others pass through as
    they are.
    """
    hints = typing.get_type_hints(cls)
    out = dict(values)
    for name, value in values.items():
        hint = hints.get(name)
        if hint is None:
            continue
        choices = _choices(hint)
        if choices is not None:
            if value not in choices and not (value is None and type(None) in typing.get_args(hint)):
                raise UmrError(f"{prefix}{name} must be one of {', '.join(map(str, choices))}, not {value!r:.40}")
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
