"""M-BEIR's global eval at growing pool sizes: peak memory per byte of vectors and search time, projected to 5.6M.

    .venv/bin/python benchmarks/eval_scale.py [--sizes 250000 500000 1000000] [--dim 1536] [--queries 2000]
                                              [--dtypes float32 float16] [--kernels-at 250000] [--json out.json]

For each pool size N it writes a real-layout M-BEIR root (a global test pool of N text candidates, one query set of
`--queries` text queries, qrels), then runs `umr.eval.mbeir.evaluate(pool="global")` twice in a child process under
`/usr/bin/time -f %M`, with a synthetic embedder (vectors drawn from each item's id: no model cost, so the run
measures the store, the pool's columns, the search and the scoring):
  * run 1 embeds into the cache (synthetic vectors through the real resumable store: shards, merge);
  * run 2 finds the cache complete: the cost of evaluating an embedded M-BEIR.
Printed per size and store dtype: peak RSS, RSS / float32 vector bytes, search seconds per 1K queries (exact
block search + float64 re-scoring + metrics). Growth between sizes (ΔRSS / Δvector bytes) is the per-vector
cost with the interpreter's fixed ~0.4 GB taken out; the issue's targets are ≤ 1.3 (float32) and ≤ 0.7 (float16).

`--kernels-at N` also times, in one child on the same N vectors, the block search with each kernel (torch, faiss)
against the flat FAISS index umr searched with before (IndexFlatIP holding its own copy) — the ratio that picks
`auto` — and `PoolView.search` (block products + the exact float64 re-scoring, which stays on the CPU).

Projections (labelled): this CPU from the measured search rate (seconds per query·candidate·dim) and RSS slope;
one GPU from FLOPs at an assumed 400 TFLOP/s effective fp16 (an H100 SXM's dense peak is 989) plus the host →
device copy of the vectors at 25 GB/s; eight GPUs = embedding sharded 8 ways, search still on rank 0's GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from umr.items import Item
from umr.models.baselines import VectorEmbedder

FULL_POOL, FULL_QUERIES = 5_600_000, 190_000


class SyntheticEmbedder(VectorEmbedder):
    """Vectors drawn from each item's id (candidates "1:i"); a query "find 1:i" lands near candidate i."""

    name = "synthetic"

    def _vec(self, n: int) -> np.ndarray:
        return np.random.default_rng(n).standard_normal(self.dim, dtype=np.float32)

    def vector(self, item: Item) -> np.ndarray:
        text = item.text or ""
        if text.startswith("find "):  # a query: its target's vector plus noise of its own
            target = int(text.split(":")[1])
            return self._vec(target) + 0.3 * self._vec(10_000_000 + target)
        return self._vec(int(item.id.split(":")[1]))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim}


def write_root(root: Path, n_pool: int, n_queries: int) -> None:
    (root / "cand_pool" / "global").mkdir(parents=True)
    (root / "query" / "test").mkdir(parents=True)
    (root / "qrels" / "test").mkdir(parents=True)
    with (root / "cand_pool" / "global" / "mbeir_union_test_cand_pool.jsonl").open("w") as fh:
        for i in range(n_pool):
            fh.write(f'{{"txt": "passage {i}", "img_path": null, "modality": "text", "did": "1:{i}", '
                     f'"src_content": null}}\n')
    targets = np.random.default_rng(0).choice(n_pool, n_queries, replace=False)
    with (root / "query" / "test" / "mbeir_webqa_task1_test.jsonl").open("w") as fh, \
            (root / "qrels" / "test" / "mbeir_webqa_task1_test_qrels.txt").open("w") as qr:
        for j, t in enumerate(targets):
            fh.write(json.dumps({"qid": f"1:{j}", "query_txt": f"find 1:{t}", "query_img_path": None,
                                 "query_modality": "text", "query_src_content": None,
                                 "pos_cand_list": [f"1:{t}"], "neg_cand_list": []}) + "\n")
            qr.write(f"1:{j} 0 1:{t} 1 1\n")


def child_eval(root: str, cache: str, dim: int, dtype: str) -> None:
    from umr.eval.mbeir import EvalOptions, evaluate

    t0 = time.perf_counter()
    report = evaluate(SyntheticEmbedder(dim), root, EvalOptions(pool="global", cache_dir=Path(cache),
                                                                 check_images=False, store_dtype=dtype,
                                                                 batch_size=1000, shard_size=50_000))
    print("RESULT " + json.dumps({"wall_s": time.perf_counter() - t0, "timings": report.timings,
                                  "recall1": report.results[0].metrics.recall[1]}))


def child_kernels(root: str, cache: str, dim: int) -> None:
    import faiss

    from umr.index.block_search import block_topk
    from umr.index.embed_job import EmbeddingStore

    jobs = {p.name.split("-")[0]: p for p in Path(cache).iterdir()}
    pool = EmbeddingStore(jobs["pool"]).embeddings()
    queries = np.ascontiguousarray(EmbeddingStore(jobs["queries"]).embeddings(), dtype=np.float32)
    from umr.data.pool_columns import PoolColumns
    from umr.pool_view import PoolView

    out = {}
    cols = PoolColumns.read(Path(root) / "cand_pool" / "global" / "mbeir_union_test_cand_pool.jsonl", root, False)
    t0 = time.perf_counter()
    PoolView(cols, pool, kernel="torch").search(queries, 50)  # what eval asks: block products + exact re-scoring
    out["pool_view_search"] = time.perf_counter() - t0
    for kernel in ("torch", "faiss"):
        t0 = time.perf_counter()
        block_topk(queries, pool, 51, kernel=kernel)
        out[kernel] = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(dim)
    index.add(np.ascontiguousarray(pool, dtype=np.float32))
    out["faiss_index_add"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.search(queries, 51)
    out["faiss_index_search"] = time.perf_counter() - t0
    print("RESULT " + json.dumps(out))


def run_child(args: list[str]) -> tuple[dict[str, Any], int]:
    time_bin = shutil.which("time") or "/usr/bin/time"
    proc = subprocess.run([time_bin, "-f", "MAXRSS %M", sys.executable, __file__, *args], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(re.search(r"^RESULT (.*)$", proc.stdout, re.M).group(1))
    return result, int(re.search(r"MAXRSS (\d+)", proc.stderr).group(1)) * 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    p.add_argument("--dim", type=int, default=1536)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--dtypes", nargs="+", default=["float32", "float16"])
    p.add_argument("--kernels-at", type=int, default=250_000, help="pool size of the kernel comparison (0: none)")
    p.add_argument("--workdir", default=None, help="where the roots and caches go (default: a temp folder)")
    p.add_argument("--json", default=None, help="write the measurements here")
    p.add_argument("--from-json", default=None, help="print the report of an earlier run's --json, measuring nothing")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--child-kernels", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child_eval(a.child[0], a.child[1], int(a.child[2]), a.child[3])
    if a.child_kernels:
        return child_kernels(a.child_kernels[0], a.child_kernels[1], int(a.child_kernels[2]))
    if a.from_json:
        saved = json.loads(Path(a.from_json).read_text())
        return report(saved["rows"], saved["kernels"], a)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="umr-eval-scale-"))
    rows, kernels = [], None
    for n in a.sizes:
        root = work / f"root-{n}"
        shutil.rmtree(root, ignore_errors=True)
        write_root(root, n, a.queries)
        for dtype in a.dtypes:
            cache = work / f"cache-{n}-{dtype}"
            shutil.rmtree(cache, ignore_errors=True)
            first, rss1 = run_child(["--child", str(root), str(cache), str(a.dim), dtype])
            second, rss2 = run_child(["--child", str(root), str(cache), str(a.dim), dtype])
            vec = n * a.dim * 4
            row = {"n": n, "dtype": dtype, "vector_bytes_f32": vec, "rss_embed": rss1, "rss_eval": rss2,
                   "search_s": second["timings"]["search_s"], "eval_wall_s": second["wall_s"],
                   "embed_wall_s": first["wall_s"], "recall1": second["recall1"]}
            rows.append(row)
            print(f"N {n:>9,}  {dtype}  peak RSS embed+eval {rss1 / 2**30:5.2f} GiB ({rss1 / vec:.2f}× f32 vectors)"
                  f"  eval of the cache {rss2 / 2**30:5.2f} GiB ({rss2 / vec:.2f}×)  search "
                  f"{1000 * second['timings']['search_s'] / a.queries:.3f} s/1K queries  R@1 {second['recall1']:.3f}",
                  flush=True)
            if n == a.kernels_at and dtype == "float32":
                kernels, _ = run_child(["--child-kernels", str(root), str(cache), str(a.dim)])
            shutil.rmtree(cache)
        shutil.rmtree(root)
    report(rows, kernels, a)
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "kernels": kernels}, indent=1) + "\n")


def report(rows: list[dict[str, Any]], kernels: dict[str, float] | None, a: argparse.Namespace) -> None:
    print("\ngrowth (measured): ΔRSS / Δ float32 vector bytes between sizes")
    slopes = {}
    for dtype in a.dtypes:
        rs = [r for r in rows if r["dtype"] == dtype]
        for lo, hi in zip(rs, rs[1:]):
            for key in ("rss_embed", "rss_eval"):
                s = (hi[key] - lo[key]) / (hi["vector_bytes_f32"] - lo["vector_bytes_f32"])
                slopes[(dtype, key)] = s
                print(f"  {dtype} {key:9s} {lo['n']:,} → {hi['n']:,}: {s:.2f}")
    if kernels:
        flat = kernels["faiss_index_add"] + kernels["faiss_index_search"]
        print(f"\nkernels at N={a.kernels_at:,}, {a.queries} queries (measured): block torch "
              f"{kernels['torch']:.1f} s, block faiss {kernels['faiss']:.1f} s, flat FAISS index {flat:.1f} s "
              f"(add {kernels['faiss_index_add']:.1f} + search {kernels['faiss_index_search']:.1f}); "
              "flat index / block faiss = "
              f"{flat / kernels['faiss']:.2f}×, torch / faiss = {kernels['torch'] / kernels['faiss']:.2f}×")
    big = max((r for r in rows if r["dtype"] == "float32"), key=lambda r: r["n"], default=None)
    if big is None:
        return
    rate = big["search_s"] / (a.queries * big["n"] * a.dim)  # s per query·candidate·dim, this CPU, all of search
    # what a GPU does not speed up: the exact float64 re-scoring on the CPU (PoolView.search minus its block
    # products, both measured at --kernels-at)
    per_query = (kernels["pool_view_search"] - kernels["torch"]) / a.queries \
        if kernels and "pool_view_search" in kernels else None
    print("\nprojection to M-BEIR's global pool (5.6M candidates, 190K queries):")
    if per_query is not None:
        print(f"  CPU-side exact re-scoring (measured at N={a.kernels_at:,}: PoolView.search "
              f"{kernels['pool_view_search']:.1f} s − block products {kernels['torch']:.1f} s): "
              f"{1000 * per_query:.2f} ms a query")
    for dim in (1536, 3584):
        cpu_s = rate * FULL_QUERIES * FULL_POOL * dim
        flops = 2 * FULL_QUERIES * FULL_POOL * dim
        for dtype in a.dtypes:
            item = np.dtype(dtype).itemsize
            slope = slopes.get((dtype, "rss_eval"), item / 4)
            gpu_s = flops / 400e12 + FULL_POOL * dim * item / 25e9 + (per_query or 0) * FULL_QUERIES * dim / a.dim
            print(f"  d {dim}  {dtype}: vectors {FULL_POOL * dim * item / 2**30:5.1f} GiB; eval RSS ≈ "
                  f"{slope * FULL_POOL * dim * 4 / 2**30:5.1f} GiB (projected from the measured slope {slope:.2f}); "
                  f"search on this CPU ≈ {cpu_s / 3600:4.1f} h (projected from the measured rate); one GPU ≈ "
                  f"{gpu_s / 60:4.1f} min (projected: FLOPs at 400 TFLOP/s + copy + the measured CPU-side part); "
                  "eight GPUs: the same (search runs on rank 0)")


if __name__ == "__main__":
    main()
