"""Build an `Index` from a finished embedding job (streamed from the memory-mapped `embeddings.npy`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from umr.errors import UmrError
from umr.index import create_index, load_index
from umr.index.base import Index, read_index_json
from umr.index.embed_job import EmbeddingStore

#: vectors added per call: bounds RAM (a chunk is copied out of the memmap) and updates the progress bar
ADD_CHUNK = 50_000
#: IVF-PQ training sample per modality (faiss wants ~39–256 points per centroid; more only slows training)
TRAIN_SAMPLE = 100_000


def job_stamp(store: EmbeddingStore) -> dict[str, Any]:
    """What an index was built from: the model and the exact embeddings (their hash)."""
    m = store.manifest()
    return {"model": m["model"], "model_spec": m.get("model_spec"),
            "job": {"corpus_fingerprint": m["corpus"]["fingerprint"],
                    "embeddings_sha256": m.get("embeddings", {}).get("sha256")}}


def index_dir(store: EmbeddingStore) -> Path:
    return store.root / "index"


def build_index(store: EmbeddingStore, kind: str = "flat", backend: str = "faiss", *, reindex: bool = False,
                show_progress: bool = True, seed: int = 0, **options: Any) -> tuple[Index, bool]:
    """Index every vector of a complete job into `<job>/index`. Returns (index, built_now).

    An existing index built from the same embeddings with the same type and backend is reused; a different
    one is replaced only with `reindex=True` (the embeddings are never touched).
    """
    role = store.manifest().get("role", "document")
    if role != "document":  # an index answers queries with documents; query vectors in it would rank as documents
        raise UmrError(f"{store.root} holds {role} embeddings; an index holds documents: embed the corpus with "
                       "`umr embed --role document` (the default)")
    target = index_dir(store)
    stamp = job_stamp(store)
    if (target / "index.json").exists():
        old = read_index_json(target)
        same = (old.get("type"), old.get("backend")) == (kind, backend) and \
            json.dumps(old.get("info", {}).get("job"), sort_keys=True) == json.dumps(stamp["job"], sort_keys=True)
        if same and not reindex:
            return load_index(target), False
        if not reindex:
            why = "embeddings have changed since" if (old.get("type"), old.get("backend")) == (kind, backend) else \
                f"it is a {old.get('backend')} {old.get('type')} index, not {backend} {kind}"
            raise UmrError(f"{target} already holds an index ({why}); pass --reindex to replace it (the "
                           "embeddings are kept)")
    emb = store.embeddings(mmap=True)
    records = store.records()
    if backend == "milvus":
        options.setdefault("uri", str(target / "milvus.db"))
        options["overwrite"] = True
        target.mkdir(parents=True, exist_ok=True)
    index = create_index(int(emb.shape[1]), kind, backend, info=stamp, **options)
    if kind == "ivfpq" and hasattr(index, "train"):
        mods = np.array([r["modality"] for r in records], dtype=object)
        rng = np.random.default_rng(seed)
        sample = np.concatenate([np.sort(rng.permutation(np.flatnonzero(mods == m))[:TRAIN_SAMPLE])
                                 for m in dict.fromkeys(mods)])
        index.train(np.asarray(emb[sample]), list(mods[sample]))
    with tqdm(total=len(records), desc=f"indexing ({backend} {kind})", unit="vec", disable=not show_progress) as bar:
        for start in range(0, len(records), ADD_CHUNK):
            end = min(start + ADD_CHUNK, len(records))
            index.add(np.asarray(emb[start:end]), records[start:end])
            bar.update(end - start)
    index.save(target)
    return index, True
