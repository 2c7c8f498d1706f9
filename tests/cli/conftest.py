from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from umr.models.tiny import build_tiny

    return str(build_tiny("gme", tmp_path_factory.mktemp("cli-tiny") / "gme"))
