"""Embedding-job throughput with 1 vs 2 processes: `umr index build` alone vs under `torchrun --nproc_per_node 2`.

    .venv/bin/python benchmarks/embed_job.py [--n 1536] [--model text]

Real MiniLM on synthetic sentences. The single process uses every core through intra-op threads (what a user
gets by default); torchrun gives each of its ranks one thread. items/s counts only the embedding phase (from
the shard records' seconds; a rank's time is the sum of its shards, the job's is the slowest rank), and the
wall time includes process start and model loading. Outputs are checked to agree.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = [
    "a", "the", "small", "large", "red", "green", "blue", "old", "new", "wooden", "metal", "striped",
    "dotted", "cat", "dog", "bus", "car", "house", "bridge", "river", "mountain", "city", "street", "market",
    "flower", "tree", "person", "child", "bicycle", "boat", "train", "photo", "of", "near", "under", "beside",
]
UMR = "import sys; from umr.cli import main; sys.exit(main())"


def write_corpus(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30)))
            fh.write(json.dumps({"id": f"s{i}", "text": text}) + "\n")


def embed_seconds(job: Path) -> float:
    """The embedding phase's duration: the slowest rank's summed shard time."""
    per_rank: dict[int, float] = {}
    for rec in (job / "shards").glob("*.json"):
        r = json.loads(rec.read_text())
        per_rank[r["rank"]] = per_rank.get(r["rank"], 0.0) + r["seconds"]
    return max(per_rank.values())


def compare_processes(n: int = 1536, model: str = "text", shard_size: int = 128) -> dict[str, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    torchrun = str(Path(sys.executable).parent / "torchrun")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "c.jsonl"
        write_corpus(corpus, n)
        args = ["index", "build", "--model", model, "--corpus", str(corpus), "--shard-size", str(shard_size),
                "--no-progress"]
        runs = {  # name: (command, extra env)
            "1proc": ([sys.executable, "-c", UMR, *args, "--out", f"{tmp}/1proc"], {}),
            "1proc_1thread": ([sys.executable, "-c", UMR, *args, "--out", f"{tmp}/1proc_1thread"],
                              {"OMP_NUM_THREADS": "1"}),
            "2proc": ([torchrun, "--standalone", "--nproc_per_node", "2", "--no-python", sys.executable, "-c", UMR,
                       *args, "--out", f"{tmp}/2proc"], {}),
        }
        out: dict[str, float] = {"items": float(n)}
        for name, (cmd, extra) in runs.items():
            t = time.perf_counter()
            subprocess.run(cmd, env={**env, **extra}, check=True, capture_output=True)
            out[f"{name}_wall_s"] = time.perf_counter() - t
            out[f"{name}_items_per_s"] = n / embed_seconds(Path(tmp) / name)
        a, b = np.load(f"{tmp}/1proc_1thread/embeddings.npy"), np.load(f"{tmp}/2proc/embeddings.npy")
        out["identical_1thread_vs_2proc"] = float(a.tobytes() == b.tobytes())
        out["max_abs_diff_vs_1proc"] = float(np.abs(np.load(f"{tmp}/1proc/embeddings.npy") - b).max())
        out["speedup_2proc_vs_1proc"] = out["2proc_items_per_s"] / out["1proc_items_per_s"]
        out["speedup_2proc_vs_1proc_1thread"] = out["2proc_items_per_s"] / out["1proc_1thread_items_per_s"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1536)
    p.add_argument("--model", default="text")
    args = p.parse_args()
    for k, v in compare_processes(args.n, args.model).items():
        print(f"{k:>20}: {v:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
