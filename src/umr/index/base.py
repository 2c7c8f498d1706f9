"""The `Index` contract shared by every backend (FAISS embedded, Milvus Lite / server / cluster).

An index holds L2-normalised float32 vectors scored by inner product, each with a record
{id (did), modality, text, image}. Conventions, in the spirit of faiss:

    scores, ids = index.search(queries [n, d], k, modality=None)
        scores: float32 [n, k], best first; -inf where there are fewer than k results
        ids:    object  [n, k] of str (the item's did); None where there are fewer than k results

`modality` keeps only candidates of that modality ("image", "text", "image,text"; a list for several), the
filter M-BEIR's global pool needs. Backends differ only in how they store and scale; code written against
`Index` runs unchanged on any of them (`create_index(..., backend="milvus")`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from umr.errors import UmrError
from umr.items import Item
from umr.runtime.atomic import read_json

#: Version of index.json; loaders accept every version up to this one (old indexes keep loading).
INDEX_FORMAT_VERSION = 1
KINDS = ("flat", "hnsw", "ivfpq")
BACKENDS = ("faiss", "milvus")
MODALITIES = ("text", "image", "image,text", "video", "video,text")


def default_pq_m(dim: int) -> int:
    """IVF-PQ sub-quantisers, the same for every backend: the divisor of dim closest to dim/8 (8 dims per 8-bit
    code: 4× compression)."""
    divisors = [m for m in range(1, dim + 1) if dim % m == 0]
    return min(divisors, key=lambda m: abs(m - dim / 8))


class SearchResult(NamedTuple):
    """`scores` float32 [n, k] (-inf filler) and `ids` object [n, k] (None filler); unpacks as a pair."""

    scores: np.ndarray
    ids: np.ndarray


def normalise_modalities(modality: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """'image' → ('image',); 'text+image' or 'image, text' → ('image,text',); None → no filter."""
    if modality is None:
        return None
    values = [modality] if isinstance(modality, str) else list(modality)
    if not values:  # an empty filter would keep nothing and answer an empty list, which looks like a bad model
        raise UmrError(f"an empty modality list keeps nothing; leave it out to search every modality, or name one "
                       f"of {', '.join(MODALITIES)}")
    out = []
    for value in values:
        parts = {p.strip() for p in value.replace("+", ",").split(",") if p.strip()}
        visual = sorted(parts - {"text"})
        name = ",".join(visual + ["text"]) if visual and "text" in parts else ",".join(visual) or ",".join(parts)
        if name not in MODALITIES:
            raise UmrError(f"unknown modality {value!r}; use one of {', '.join(MODALITIES)}")
        out.append(name)
    return tuple(dict.fromkeys(out))


def as_records(records: Iterable[dict[str, Any] | Item]) -> list[dict[str, Any]]:
    """Items or dicts → [{id, modality, text, image}] with the id required and modality normalised."""
    from umr.index.embed_job import item_record

    out = []
    for rec in records:
        r = item_record(rec) if isinstance(rec, Item) else dict(rec)
        if r.get("id") is None:
            raise UmrError(f"record {r!r} has no id; every indexed item needs a unique id (did)")
        mod = normalise_modalities(r.get("modality") or "text")
        out.append({"id": str(r["id"]), "modality": mod[0] if mod else "text", "text": r.get("text"),
                    "image": None if r.get("image") is None else str(r["image"])})
    return out


def check_vectors(vectors: np.ndarray, dim: int, what: str = "vectors") -> np.ndarray:
    """float32, C-contiguous [n, dim]; a clear error for a wrong dimension (usually a model/index mismatch)."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise UmrError(f"wrong vector dimension: {what} have shape {list(np.shape(vectors))}, this index holds "
                       f"{dim}-d vectors — were they made by the model the index was built with?")
    if not np.isfinite(arr).all():
        raise UmrError(f"{what} contain NaN or inf")
    return np.ascontiguousarray(arr)


def fill_results(n: int, k: int) -> SearchResult:
    return SearchResult(np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), None, dtype=object))


class Index(ABC):
    """Inner-product index with a record per vector; see the module docstring for the search contract."""

    backend: str = ""
    dim: int
    kind: str
    #: free-form JSON saved with the index: `model` (Embedder.describe()) and `model_spec` by convention
    info: dict[str, Any]

    @abstractmethod
    def add(self, vectors: np.ndarray, records: Sequence[dict[str, Any] | Item]) -> None:
        """Add vectors [n, d] with their records; an id already present is an error (delete it first)."""

    @abstractmethod
    def delete(self, ids: Iterable[str]) -> int:
        """Remove items by id; unknown ids are ignored. Returns how many were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int = 10, modality: str | Sequence[str] | None = None) -> SearchResult:
        """Top-k by inner product for each query row; see the module docstring for shapes and fillers."""

    @abstractmethod
    def get(self, ids: Iterable[str]) -> list[dict[str, Any] | None]:
        """Records {id, modality, text, image} for these ids (None for unknown ones)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def modality_counts(self) -> dict[str, int]: ...

    @abstractmethod
    def save(self, path: str | Path) -> None:
        """Persist atomically: a crash mid-save leaves the previous saved index loadable."""

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path, mmap: bool = False) -> Index: ...


def read_index_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    spec = path / "index.json"
    if not spec.exists():
        raise FileNotFoundError(f"{path} is not a saved umr index (no index.json); build one with `umr index build`")
    meta = read_json(spec, "index description")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > INDEX_FORMAT_VERSION:
        raise UmrError(f"{spec} has format_version {version!r}; this umr reads ≤ {INDEX_FORMAT_VERSION} — "
                       "upgrade umr")
    return meta
