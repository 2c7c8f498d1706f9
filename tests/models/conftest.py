"""Tiny models built once per session (each ~0.5 s), shared read-only by the model tests."""

from __future__ import annotations

import pytest
from mllm_support import MLLM_RECIPES


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from umr.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny")
    return {name: str(build_tiny(name, root / name)) for name in MLLM_RECIPES}


@pytest.fixture(scope="session")
def embedders(tiny_dirs: dict[str, str]) -> dict:
    from umr import load_embedder

    return {name: load_embedder(path) for name, path in tiny_dirs.items()}
