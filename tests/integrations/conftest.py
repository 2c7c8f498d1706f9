"""Fixtures for the framework adapters (helpers: integrations_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from integrations_support import COLOURS, ToyEmbedder, png_bytes


@pytest.fixture
def toy() -> ToyEmbedder:
    return ToyEmbedder()


@pytest.fixture
def colour_files(tmp_path: Path) -> dict[str, str]:
    """i-red, i-green, i-blue as PNG files: {did: path}."""
    paths = {}
    for did, colour in COLOURS.items():
        paths[did] = str(tmp_path / f"{did}.png")
        Path(paths[did]).write_bytes(png_bytes(colour))
    return paths
