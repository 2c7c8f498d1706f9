"""What both framework adapters share: an embedder from a name, image references → Items, the two roles."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from pathlib import Path

from umr.errors import UmrError
from umr.items import ImageLike, Item
from umr.models.base import Embedder

#: an image as the frameworks hand it over: a file path, a data: URL, raw bytes or a stream of them
ImageRef = str | Path | bytes | io.BytesIO


def as_embedder(embedder: Embedder | str) -> Embedder:
    """An Embedder as given, or loaded by name ('tiny:gme', a model folder, a hub id)."""
    if isinstance(embedder, Embedder):
        return embedder
    if isinstance(embedder, str):
        from umr.models.registry import load_embedder

        return load_embedder(embedder)
    raise TypeError(f"expected a umr Embedder or a model name, got {type(embedder).__name__}")


def image_of(ref: ImageRef) -> ImageLike:
    """What an Item's image takes: bytes for a stream or a data: URL, the path otherwise (read when embedded)."""
    if isinstance(ref, io.BytesIO):
        return ref.getvalue()
    if isinstance(ref, str) and ref[:5].lower() == "data:":
        header, _, data = ref.partition(",")
        if ";base64" not in header:
            raise UmrError(f"image {ref[:40]!r}…: a data: URL must be base64-encoded (data:image/png;base64,...)")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UmrError(f"image {ref[:40]!r}…: the data: URL is not valid base64 ({exc})") from exc
    return ref


def embed_documents(embedder: Embedder, items: Sequence[Item], batch_size: int) -> list[list[float]]:
    """Documents carry no instruction: the vectors `umr embed` and `umr index build` write."""
    return embedder.encode_document(items, batch_size=batch_size).tolist() if items else []


def embed_queries(embedder: Embedder, items: Sequence[Item], instruction: str | None,
                  batch_size: int) -> list[list[float]]:
    """Queries with `instruction` (None: the recipe's default query form), as `umr search` embeds them."""
    return embedder.encode_query(items, instruction=instruction, batch_size=batch_size).tolist() if items else []
