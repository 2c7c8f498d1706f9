"""The HTTP service and search page: `create_app(index, embedder, settings)`, run by `umr serve`.

Needs the `serve` extra (fastapi, uvicorn, python-multipart): `pip install 'umr[serve]'`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Batcher", "Scorer", "ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    """Lazy, so `import umr.serve` works (and says what to install) without fastapi present."""
    if name == "Batcher":
        from umr.serve.batching import Batcher

        return Batcher
    if name in ("Scorer", "ServeSettings", "create_app"):
        from umr.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'umr.serve' has no attribute {name!r}")
