"""Fixtures for the serve tests: a toy index with images (built once per session) and app/client factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra: pip install 'umr[serve]'")

from fastapi.testclient import TestClient
from serve_support import ToyEmbedder, build_index

from umr.index import load_index
from umr.serve.app import ServeSettings, create_app


@pytest.fixture(scope="session")
def toy_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve-index")
    build_index(folder)
    return folder / "index"


@pytest.fixture
def make_client(toy_index_dir: Path) -> Iterator[Callable[..., TestClient]]:
    """make_client(reranker=None, embedder=None, raise_errors=False, **settings) → a started TestClient."""
    opened: list[TestClient] = []

    def make(reranker: Any = None, embedder: Any = None, raise_errors: bool = False, **settings: Any) -> TestClient:
        settings.setdefault("index_dir", toy_index_dir)
        app = create_app(load_index(toy_index_dir), embedder or ToyEmbedder(), ServeSettings(**settings),
                         reranker=reranker)
        client = TestClient(app, raise_server_exceptions=raise_errors)
        client.__enter__()  # runs the lifespan, as uvicorn does
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
