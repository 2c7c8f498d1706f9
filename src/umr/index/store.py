"""The read side of an embedding job directory (`umr.index.embed_job` writes it): manifest, ids, verified shards
and the merged matrix, plus the names both sides share (format version, dtypes, shard ranges, item records)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from umr.errors import UmrError
from umr.items import Item
from umr.runtime.atomic import read_json, sha256_file

#: Bump when the layout changes; readers accept every version up to this one.
FORMAT_VERSION = 1
#: the dtypes a store may hold its vectors in
STORE_DTYPES = ("float32", "float16")


class StoreError(UmrError):
    """A job directory cannot be used as asked; the message names the file and what to do."""


def item_record(item: Item) -> dict[str, Any]:
    """The metadata kept beside a vector: did, modality, text, image path (None for in-memory images)."""
    image = str(item.image) if isinstance(item.image, str | Path) else None
    return {"id": item.id, "modality": item.modality, "text": item.text, "image": image}


def shard_ranges(n: int, size: int) -> list[tuple[int, int]]:
    if size < 1:
        raise UmrError(f"shard size must be ≥ 1, got {size}")
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def shard_name(start: int, end: int) -> str:
    return f"{start:09d}-{end:09d}"


class EmbeddingStore:
    """The read side of a job directory: manifest, ids, verified shards and the merged matrix."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def manifest(self) -> dict[str, Any]:
        if not self.exists():
            raise StoreError(f"{self.root} has no manifest.json: not an embedding job directory (run `umr index "
                             "build` first)")
        m = read_json(self.manifest_path, "job manifest")
        version = m.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise StoreError(f"{self.manifest_path} has format_version {version!r}; this umr reads ≤ "
                             f"{FORMAT_VERSION} — upgrade umr")
        return m

    @property
    def complete(self) -> bool:
        return self.exists() and self.manifest().get("status") == "complete"

    def records(self) -> list[dict[str, Any]]:
        """ids.jsonl as a list of {id, modality, text, image}, in corpus (= row) order."""
        with (self.root / "ids.jsonl").open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def shard_file(self, start: int, end: int, suffix: str = ".npy") -> Path:
        return self.root / "shards" / (shard_name(start, end) + suffix)

    def done_records(self) -> dict[tuple[int, int], dict[str, Any]]:
        """Shard done-records found on disk (the source of truth for resume), keyed by (start, end)."""
        out: dict[tuple[int, int], dict[str, Any]] = {}
        for path in sorted((self.root / "shards").glob("*.json")):
            rec = read_json(path, "shard record")
            out[(int(rec["start"]), int(rec["end"]))] = rec
        return out

    def verify(self, manifest: dict[str, Any] | None = None, check_hash: bool = True) -> set[tuple[int, int]]:
        """Check every done shard against its record and the manifest; return the done ranges.

        Raises StoreError for a corrupt or truncated shard, a wrong dimension, a shard outside the plan, or a
        manifest that lists a shard whose files are gone. Nothing is modified.
        """
        m = manifest or self.manifest()
        dim, plan = int(m["dim"]), set(shard_ranges(int(m["n_items"]), int(m["shard_size"])))
        recs = self.done_records()
        for entry in m.get("shards", []):
            key = (int(entry["start"]), int(entry["end"]))
            if key not in recs:
                raise StoreError(
                    f"manifest mismatch: {self.manifest_path} lists shard {shard_name(*key)} as done but "
                    f"{self.shard_file(*key, '.json')} is missing (the directory was changed outside umr). Restore "
                    f"the file, or remove that entry from the manifest's \"shards\" list to re-embed items "
                    f"{key[0]}..{key[1] - 1}")
        for key, rec in recs.items():
            npy = self.shard_file(*key)
            redo = (f"move {npy.name} and {npy.with_suffix('.json').name} out of {npy.parent} and rerun to "
                    f"re-embed items {key[0]}..{key[1] - 1} (other shards are kept)")
            if key not in plan:
                raise StoreError(f"manifest mismatch: shard {npy} is not in this job's plan ({m['n_items']} items, "
                                 f"shard size {m['shard_size']}); {redo}")
            if int(rec["dim"]) != dim:
                raise StoreError(f"wrong vector dimension: shard {npy} has dim {rec['dim']}, the job's model has "
                                 f"{dim}; {redo}")
            if not npy.exists():
                raise StoreError(f"corrupt shard: record {npy.with_suffix('.json')} exists but {npy} is missing; "
                                 f"{redo}")
            if check_hash and sha256_file(npy) != rec["sha256"]:
                raise StoreError(f"corrupt shard: {npy} does not match the sha256 in its record; {redo}")
            try:
                arr = np.load(npy, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise StoreError(f"corrupt shard: {npy} is not a readable .npy ({exc}); {redo}") from exc
            if arr.shape != (key[1] - key[0], dim) or arr.dtype != store_dtype(m):
                raise StoreError(f"corrupt shard: {npy} holds {arr.dtype}{list(arr.shape)}, expected "
                                 f"{store_dtype(m)}[{key[1] - key[0]}, {dim}]; {redo}")
        return set(recs)

    def iter_shards(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """(start, end, [rows, dim]) for each done shard, in row order, memory-mapped."""
        for start, end in sorted(self.done_records()):
            yield start, end, np.load(self.shard_file(start, end), mmap_mode="r")

    def embeddings(self, mmap: bool = True) -> np.ndarray:
        """The merged [N, dim] matrix in the store's dtype (memory-mapped by default, so 1M × 768 costs no RAM up
        front: pages are read as a search touches them, and the OS may drop them again under memory pressure)."""
        m = self.manifest()
        if m.get("status") != "complete":
            raise StoreError(f"{self.root}: the embedding job is not complete; rerun `umr index build` to resume")
        try:
            arr = np.load(self.root / "embeddings.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:  # truncated (a full disk, a copy cut short) or missing
            raise StoreError(f"{self.root / 'embeddings.npy'} is unreadable ({str(exc)[:80]}); rerun `umr index "
                             "build` on this job to merge the shards again") from exc
        if arr.shape != (int(m["n_items"]), int(m["dim"])):
            raise StoreError(f"{self.root / 'embeddings.npy'} has shape {arr.shape}, manifest says "
                             f"({m['n_items']}, {m['dim']}); delete it and rerun to merge the shards again")
        return arr


def store_dtype(manifest: dict[str, Any]) -> np.dtype:
    """The dtype a store's vectors are kept in (float32 for stores written before the choice existed)."""
    return np.dtype(manifest.get("dtype", "float32"))
