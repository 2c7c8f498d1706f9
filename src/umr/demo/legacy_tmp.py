"""The offline demo: world → embed the global pool → index → three queries of different modalities.

This is the first version of the main job (issue 10 grows it into train → mine → re-rank → evaluate → report).
Every step writes plain files under `out`, so a rerun resumes the embedding job and rebuilds only the rest.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from umr.data.mbeir import read_pool, read_queries
from umr.data.world import build_world
from umr.index.base import create_index
from umr.index.store import run_embedding_job
from umr.models.registry import load_embedder

#: one query per kind of task, found by its task id in the world's test split
DEMO_TASKS = {0: "text → image", 3: "image → text", 7: "image + edit → image"}


def run_demo(out: str | Path = "runs/demo", model: str = "tiny:gme", size: str = "tiny", seed: int = 0,
             k: int = 3) -> dict:
    console = Console()
    out = Path(out)
    t0 = time.perf_counter()
    world = out / "world"
    with console.status("generating the offline world"):
        build_world(world, size=size, seed=seed)
    pool = read_pool(world / "cand_pool" / "global" / "mbeir_union_test_cand_pool.jsonl", root=world)
    console.print(f"[bold]1. world[/] {world}: global test pool of {len(pool)} candidates")

    embedder = load_embedder(model)
    console.print(f"[bold]2. model[/] {model}: {embedder.describe()}")
    store = run_embedding_job([c.to_item(world) for c in pool], embedder, out / "embeddings", model_spec=model,
                              shard_size=256)
    index = create_index(embedder.dim, kind="flat")
    index.add(store.embeddings(mmap=False), [c.to_item(world) for c in pool])
    index.save(out / "index")
    console.print(f"[bold]3. index[/] {out / 'index'}: {len(index)} vectors, {index.modality_counts()}")

    shown = {}
    for path in sorted((world / "query" / "test").glob("*.jsonl")):
        for query in read_queries(path, root=world):
            if query.task_id in DEMO_TASKS and query.task_id not in shown:
                shown[query.task_id] = query
    results = {}
    for task, query in sorted(shown.items()):
        vec = embedder.encode_queries([query.to_item(world)], instruction="Retrieve the best match.")
        scores, ids = index.search(vec, k=k)
        table = Table(title=f"{DEMO_TASKS[task]}: {query.txt or query.img_path}")
        for col in ("rank", "did", "modality", "score", "text / image", "positive"):
            table.add_column(col)
        records = index.get([i for i in ids[0] if i is not None])
        for rank, (did, score, rec) in enumerate(zip(ids[0], scores[0], records), 1):
            what = (rec or {}).get("text") or Path((rec or {}).get("image") or "").name
            table.add_row(str(rank), did, rec["modality"], f"{score:.3f}", str(what)[:60],
                          "yes" if did in query.pos else "")
        console.print(table)
        results[query.qid] = list(ids[0])
    console.print(f"done in {time.perf_counter() - t0:.1f} s. The tiny model is untrained, so rankings are near "
                  f"random. Browse it: umr serve --index {out / 'index'} --model {model}  (then open "
                  "http://127.0.0.1:8000); `umr --help` lists the other verbs.")
    return results
