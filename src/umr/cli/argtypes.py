"""argparse types for counts and ports: a bad number stops at parse time with argparse's one-line error (exit 2)
instead of being quietly replaced (`--batch-size -5` ran as 1, `--shard-size 0` became 1000)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer ≥ 1 (batch sizes, shard sizes, step counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value
