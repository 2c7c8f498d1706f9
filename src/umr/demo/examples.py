"""The demo's index of the global test pool and the example queries the report shows with their results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from umr.data.mbeir import TASKS

#: task id → what the report calls it; one example query of each, in this order
EXAMPLE_TASKS = {0: "text → image", 3: "image → text", 7: "image + edit → image", 8: "image + question → card",
                 2: "text → image + text", 4: "image → image"}


def _pool_file(world: Path) -> Path:
    from umr.data.mbeir_sets import global_pool_file

    return global_pool_file(world, "test")


def build_index(model: str, world: Path, out: Path, name: str) -> dict[str, Any]:
    """A flat FAISS index of the global test pool, from the vectors the global eval cached (or embedded now)."""
    from umr.data.mbeir_sets import load_pool
    from umr.index import create_index
    from umr.models.registry import load_embedder
    from umr.retrieval import embed_items, file_fingerprint

    embedder = load_embedder(model, device="cpu")
    path = _pool_file(world)
    items = [c.to_item(world) for c in load_pool(path, world, check_images=False).values()]
    # the same label/key as umr.eval.mbeir.evaluate uses, so a global eval of this model already holds them
    vectors = embed_items(embedder, items, "pool-global-test", file_fingerprint(path), cache_dir=out / "cache" / name)
    # the model is recorded so `umr search`/`serve` embed queries with it (and refuse another); image paths are
    # relative to the demo's working directory, recorded as the index's image root
    index = create_index(embedder.dim, kind="flat", info={"model": embedder.describe(), "model_spec": model,
                                                          "image_root": str(Path.cwd())})
    index.add(vectors, items)
    index.save(out / "index")
    return {"path": str(out / "index"), "model": model, "vectors": len(index), "modalities": index.modality_counts()}


def example_queries(model: str, world: Path, out: Path, n: int = 4, k: int = 5) -> list[dict[str, Any]]:
    """The first test query of `n` task kinds, searched in the demo index; results with image paths and texts."""
    from umr.data.mbeir import read_queries
    from umr.data.mbeir_sets import instruction_table
    from umr.index import load_index
    from umr.models.registry import load_embedder
    from umr.retrieval import query_instruction

    embedder = load_embedder(model, device="cpu")
    index = load_index(out / "index")
    table = instruction_table(world)
    first: dict[int, Any] = {}
    for path in sorted((world / "query" / "test").glob("*.jsonl")):
        for q in read_queries(path, root=world, check_images=False):
            first.setdefault(q.task_id, q)
    shown = []
    for task in [t for t in EXAMPLE_TASKS if t in first][:n]:
        q = first[task]
        instruction = query_instruction(q, table, TASKS[task][1])
        vec = embedder.encode_query([q.to_item(world, instruction)])
        scores, ids = index.search(vec, k=k)
        records = index.get([i for i in ids[0] if i is not None])
        results = []
        for did, score, rec in zip(ids[0], scores[0], records):
            rec = rec or {}
            results.append({"did": did, "score": round(float(score), 4), "modality": rec.get("modality"),
                            "text": rec.get("text"), "image": rec.get("image"), "positive": did in q.pos})
        shown.append({"task": EXAMPLE_TASKS[task], "task_id": task, "qid": q.qid, "instruction": instruction,
                      "text": q.txt, "image": str(world / q.img_path) if q.img_path else None, "results": results})
    return shown
