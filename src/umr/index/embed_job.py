"""Resumable, sharded, multi-process embedding jobs: a corpus → `.npy` shards + `ids.jsonl` + `manifest.json`.

A job directory:

    manifest.json                   what the job is (model, role, corpus fingerprint, shard size, dim, format
                                    version), the shards known done, and the status ("running" | "complete")
    ids.jsonl                       one line per item in corpus order: id, modality, text, image (index metadata)
    shards/000000000-000001000.npy  embeddings of items [0, 1000): float32 [rows, dim]
    shards/000000000-000001000.json its done record: rows, dim, sha256 of the .npy, the rank that wrote it
    embeddings.npy                  every shard merged in order, [N, dim] (once all shards are done)

Vectors are float32, or float16 with `store_dtype="float16"` (UniIR's choice for its M-BEIR embeddings: half the
disk and RAM; the manifest's "dtype" says which, and a store without one is float32). `items` may be any
Sequence (`umr.data.pool_columns.PoolItems` makes a 5.6M-candidate pool's Items one shard at a time): the job
reads it a chunk at a time to fingerprint the corpus and write ids.jsonl, so no list of every item is held.

Every file is written to a temp name and `os.replace`d, and a shard's record is written only after its data,
so a SIGKILL at any instant leaves finished shards intact and at worst re-embeds the one in flight. Shard i
belongs to rank i % world_size: the assignment never depends on timing, so ranks never race for a shard and
a rerun with any number of processes fills exactly the gaps. Rank 0 plans, verifies and merges.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from umr.index.store import (  # noqa: F401  (StoreError and item_record are this module's names too)
    FORMAT_VERSION,
    STORE_DTYPES,
    EmbeddingStore,
    StoreError,
    item_record,
    shard_name,
    shard_ranges,
    store_dtype,
)
from umr.items import Item, Role
from umr.models.base import Embedder
from umr.runtime.atomic import (
    atomic_save_npy,
    atomic_write,
    atomic_write_json,
    remove_stale_temps,
    sha256_file,
)
from umr.runtime.distributed import DistInfo, barrier, dist_info, init_process_group

#: items read at once while fingerprinting a corpus or writing its ids.jsonl
_CHUNK = 4096
KNOWN_ENTRIES = {"manifest.json", "ids.jsonl", "shards", "embeddings.npy", "index", "rejected.jsonl"}


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)


def _id_lines(items: Sequence[Item]) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """ids.jsonl's line and record of every item, in order, reading `items` a chunk at a time."""
    for start in range(0, len(items), _CHUNK):
        for it in items[start:start + _CHUNK]:
            rec = item_record(it)
            if rec["id"] is None:
                raise StoreError(f"{it.describe()} has no id; every corpus item needs a unique id (did)")
            yield (_canonical(rec) + "\n").encode("utf-8"), rec


def _corpus_summary(items: Sequence[Item]) -> dict[str, Any]:
    """The corpus part of a job's plan: ids.jsonl's sha256 and the modality counts (duplicate ids refused)."""
    digest, counts, seen = hashlib.sha256(), {}, {}
    for i, (line, rec) in enumerate(_id_lines(items)):
        ident, modality = rec["id"], rec["modality"]
        if ident in seen:
            raise StoreError(f"duplicate item id {ident!r} (items {seen[ident]} and {i}); ids must be unique")
        seen[ident] = i
        digest.update(line)
        counts[modality] = counts.get(modality, 0) + 1
    return {"fingerprint": digest.hexdigest(), "modalities": dict(sorted(counts.items()))}


def _write_ids(items: Sequence[Item]) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            for line, _ in _id_lines(items):
                fh.write(line)

    return write


def _mismatch(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    diffs = []
    if _canonical(old.get("model")) != _canonical(new["model"]):
        diffs.append(f"model (directory: {_canonical(old.get('model'))}; now: {_canonical(new['model'])})")
    for key in ("dim", "n_items", "shard_size"):
        if old.get(key) != new[key]:
            diffs.append(f"{key} (directory: {old.get(key)}; now: {new[key]})")
    if old.get("role", "document") != new["role"]:  # a store written before roles were recorded holds documents
        diffs.append(f"role (directory: {old.get('role', 'document')}; now: {new['role']})")
    if store_dtype(old) != store_dtype(new):
        diffs.append(f"dtype (directory: {store_dtype(old)}; now: {store_dtype(new)})")
    if old.get("corpus", {}).get("fingerprint") != new["corpus"]["fingerprint"]:
        diffs.append("corpus contents (ids/text/image paths changed)")
    return diffs


def _prepare(store: EmbeddingStore, plan: dict[str, Any], write_ids: Callable[[Path], None], overwrite: bool,
             clean: bool = True) -> None:
    """Rank 0: create the job directory, or check that the one there is this same job (then resume).

    clean: delete temp files a killed run left behind (a full-size embeddings.npy temp among them); only when no
    other rank can be writing yet."""
    root = store.root
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root} is a file, not a job directory; give --out a new or existing directory")
    if clean and root.is_dir():
        for folder in (root, root / "shards", root / "index"):
            if folder.is_dir():
                remove_stale_temps(folder)
    if store.exists():
        old = store.manifest()
        diffs = _mismatch(old, plan)
        if not diffs:
            if sha256_file(root / "ids.jsonl") != plan["corpus"]["fingerprint"]:
                raise StoreError(f"manifest mismatch: {root / 'ids.jsonl'} does not match the fingerprint in "
                                 "manifest.json (edited outside umr); rerun with --overwrite to start over")
            return
        if not overwrite:
            raise StoreError(f"{root} holds an embedding job with a different " + "; ".join(diffs) +
                             ". Nothing was changed: use another --out, or pass --overwrite to discard it")
    if root.exists() and any(root.iterdir()):
        unknown = sorted(p.name for p in root.iterdir() if p.name not in KNOWN_ENTRIES and ".tmp-" not in p.name)
        if unknown:
            raise StoreError(f"{root} contains files umr did not write ({', '.join(unknown[:5])}); refusing to "
                             "build there — choose an empty or new --out")
        if not overwrite:
            raise StoreError(f"{root} has leftovers of a job but no manifest.json; pass --overwrite to clear them")
        for name in KNOWN_ENTRIES:
            path = root / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    atomic_write(root / "ids.jsonl", write_ids)
    atomic_write_json(store.manifest_path, {**plan, "status": "running", "shards": []})


def _write_progress(store: EmbeddingStore, plan: dict[str, Any], status: str,
                    recs: dict[tuple[int, int], dict[str, Any]], **extra: Any) -> None:
    """Rank 0 rewrites the manifest with the shards known done (`recs`: its own, plus others' as last seen)."""
    shards = [{"start": s, "end": e, "sha256": r["sha256"], "rank": r.get("rank", 0)}
              for (s, e), r in sorted(recs.items())]
    atomic_write_json(store.manifest_path, {**plan, "status": status, "shards": shards, **extra})


def _wait(condition: Callable[[], bool], what: str, poll_s: float, timeout_s: float | None) -> None:
    start = time.monotonic()
    while not condition():
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise StoreError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(poll_s)


def _embed_shard(store: EmbeddingStore, embedder: Embedder, items: list[Item], start: int, end: int, dim: int,
                 batch_size: int, rank: int, dtype: np.dtype, role: Role) -> dict[str, Any]:
    t0 = time.perf_counter()
    vecs = np.asarray(embedder.encode_role(role, items[start:end], batch_size=batch_size), dtype=np.float32)
    if vecs.shape != (end - start, dim):
        raise StoreError(f"wrong vector dimension: the model returned {list(vecs.shape)} for items "
                         f"{start}..{end - 1} (first {items[start].describe()}), the job expects [{end - start}, "
                         f"{dim}]; shard {shard_name(start, end)} was not written")
    bad = np.flatnonzero(~np.isfinite(vecs).all(axis=1))
    if bad.size:
        raise StoreError(f"the model returned NaN/inf for {items[start + int(bad[0])].describe()}; "
                         f"shard {shard_name(start, end)} was not written")
    npy = store.shard_file(start, end)
    atomic_save_npy(npy, np.ascontiguousarray(vecs, dtype=dtype))
    record = {"start": start, "end": end, "rows": end - start, "dim": dim, "sha256": sha256_file(npy), "rank": rank,
              "seconds": round(time.perf_counter() - t0, 3)}
    atomic_write_json(npy.with_suffix(".json"), record)
    return record


def _merge(store: EmbeddingStore, n: int, dim: int, dtype: np.dtype) -> str:
    """Concatenate the shards into embeddings.npy (streamed through a memmap: constant RAM) and hash it."""
    need, free = n * dim * np.dtype(dtype).itemsize + 4096, shutil.disk_usage(store.root).free
    if need > free:  # a memmap on a full disk dies of SIGBUS with no message: check first
        raise StoreError(f"{store.root}: merging needs {need / 1e9:.2f} GB free, {free / 1e9:.2f} GB are; free "
                         "space and rerun (the finished shards are kept)")

    def write(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(n, dim))
        for start, end, arr in store.iter_shards():
            out[start:end] = arr
        out.flush()
        del out

    atomic_write(store.root / "embeddings.npy", write)
    return sha256_file(store.root / "embeddings.npy")


def run_embedding_job(items: Iterable[Item], embedder: Embedder, out: str | Path, *, model_spec: str | None = None,
                      shard_size: int = 1000, batch_size: int = 32, overwrite: bool = False,
                      info: DistInfo | None = None, show_progress: bool = True, poll_s: float = 1.0,
                      wait_timeout_s: float | None = None, store_dtype: str = "float32",
                      wait_merged: bool = False, role: Role = "document") -> EmbeddingStore:
    """Embed `items` into the job directory `out`, resuming whatever is already done there.

    Every rank of a torchrun/accelerate launch calls this with the same items; rank i embeds shards
    i, i + world, … and rank 0 merges once all are done. Returns the store (complete on rank 0; on every rank
    with `wait_merged`, for callers that read the merged vectors next). `model_spec` is how to load the model
    again (e.g. for `umr search`), kept in the manifest. `store_dtype`: "float32" or "float16". `role`: embed the
    items as documents (no instruction) or as queries (each keeps its own), recorded in the manifest.
    """
    if store_dtype not in STORE_DTYPES:
        raise StoreError(f"store dtype must be one of {', '.join(STORE_DTYPES)}, got {store_dtype!r}")
    info = info or dist_info()
    has_group = init_process_group(info)
    store = EmbeddingStore(out)
    items = items if isinstance(items, Sequence) else list(items)
    n, dim = len(items), int(embedder.dim)
    plan = {"format_version": FORMAT_VERSION, "model": embedder.describe(), "role": role, "model_spec": model_spec,
            "dim": dim, "n_items": n, "shard_size": int(shard_size), "world_size": info.world_size,
            "dtype": store_dtype, "corpus": _corpus_summary(items)}
    ranges = shard_ranges(n, shard_size)
    if info.is_main:  # other ranks wait for it under a process group; without one they may already be writing
        _prepare(store, plan, _write_ids(items), overwrite, clean=has_group or info.world_size == 1)
    if has_group:
        barrier()
    elif not info.is_main:
        _wait(lambda: store.exists() and not _mismatch(store.manifest(), plan), f"rank 0 to plan {store.root}",
              poll_s, wait_timeout_s)
    manifest = store.manifest()
    if manifest.get("status") == "complete" and _merged_ok(store):
        return store  # (a merged file that went bad is merged again from the verified shards below)
    # Rank 0 checks every finished shard (hash included) before adding to the directory; others trust it.
    done = store.verify(manifest) if info.is_main else set(store.done_records())
    mine = [r for i, r in enumerate(ranges) if i % info.world_size == info.rank and r not in done]
    known = store.done_records()
    if info.is_main:
        _write_progress(store, plan, "running", known)
    desc = "embedding" if info.world_size == 1 else f"embedding (rank {info.rank})"
    dtype = np.dtype(store_dtype)
    with tqdm(total=sum(e - s for s, e in mine), desc=desc, unit="item", disable=not show_progress) as bar:
        for count, (start, end) in enumerate(mine, 1):
            known[(start, end)] = _embed_shard(store, embedder, items, start, end, dim, batch_size, info.rank,
                                               dtype, role)
            if info.is_main:
                if info.world_size > 1 and count % 16 == 0:  # pick up other ranks' shards now and then, not
                    known = store.done_records()  # after every shard (a directory scan grows with the job)
                _write_progress(store, plan, "running", known)
            bar.update(end - start)
    if has_group:
        barrier()
    if not info.is_main:
        if wait_merged:
            _wait_merged(store, has_group, poll_s, wait_timeout_s)
        return store
    _wait(lambda: set(store.done_records()) >= set(ranges), "every rank's shards", poll_s, wait_timeout_s)
    store.verify(store.manifest())
    digest = _merge(store, n, dim, dtype)
    merged = {"file": "embeddings.npy", "shape": [n, dim], "sha256": digest}
    _write_progress(store, plan, "complete", store.done_records(), embeddings=merged)
    if wait_merged and has_group:
        barrier()  # the other ranks wait at this barrier in _wait_merged
    return store


def _wait_merged(store: EmbeddingStore, has_group: bool, poll_s: float, timeout_s: float | None) -> None:
    """A rank other than 0: return once rank 0 has merged the shards (its barrier, or the manifest's status)."""
    if has_group:
        barrier()
    else:
        _wait(lambda: store.complete, f"rank 0 to merge {store.root}", poll_s, timeout_s)


def _merged_ok(store: EmbeddingStore) -> bool:
    try:
        store.embeddings(mmap=True)
    except StoreError:
        return False
    return True
