"""Training throughput and peak memory: plain full-batch backward vs GradCache, as the batch grows.

    .venv/bin/python benchmarks/train_throughput.py [--batches 64 256 1024] [--micro 32] [--steps 2]

Each configuration runs in a fresh process (so peak RSS is its own) on the tiny Qwen2-VL (gme recipe):
caption → image pairs, full fine-tuning, symmetric InfoNCE, AdamW. Prints samples/s and peak RSS for both
paths, and the ratios; with GradCache the memory should stay roughly flat as the batch grows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def one_run(batch: int, micro: int | None, steps: int, model_dir: str) -> dict:
    import torch
    from PIL import Image, ImageDraw

    from umr import Item, load_embedder
    from umr.train.gradcache import full_batch_loss, gradcache_backward
    from umr.train.losses import InfoNCELoss

    torch.manual_seed(0)
    emb = load_embedder(model_dir)
    emb.model.train()
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "black", "cyan"]
    shapes = ["circle", "square"]
    queries, positives = [], []
    for i in range(batch):
        colour, shape = colours[i % len(colours)], shapes[(i // len(colours)) % 2]
        img = Image.new("RGB", (112, 112), "white")
        box = (20 + i % 7, 20 + i % 5, 90, 90)
        (ImageDraw.Draw(img).ellipse if shape == "circle" else ImageDraw.Draw(img).rectangle)(box, fill=colour)
        queries.append(Item(text=f"a {colour} {shape} number {i}"))
        positives.append(Item(image=img))
    loss_fn = InfoNCELoss(learnable=True, symmetric=True)
    params = [p for p in emb.model.parameters() if p.requires_grad] + list(loss_fn.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    times = []
    for _ in range(steps + 1):  # the first step warms up allocators and kernels
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if micro:
            gradcache_backward(emb, loss_fn, queries, positives, micro_batch=micro)
        else:
            full_batch_loss(emb, loss_fn, queries, positives).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    seconds = sum(times[1:]) / steps
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"batch": batch, "micro": micro, "samples_per_s": batch / seconds, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--micro", type=int, default=32, help="GradCache micro-batch")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--one", nargs=3, metavar=("BATCH", "MICRO", "MODEL_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        batch, micro, model_dir = int(args.one[0]), int(args.one[1]) or None, args.one[2]
        print(json.dumps(one_run(batch, micro, args.steps, model_dir)))
        return

    from umr.models.tiny import build_tiny

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny("gme", f"{tmp}/gme"))
        rows = {}
        for batch in args.batches:
            for micro in (0, args.micro):
                cmd = [sys.executable, __file__, "--steps", str(args.steps), "--one", str(batch), str(micro),
                       model_dir]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
                rows[(batch, micro)] = json.loads(out)
    print(f"{'batch':>6} | {'plain samples/s':>15} {'plain peak MB':>13} | {'GradCache samples/s':>19} "
          f"{'GradCache peak MB':>17} | {'memory ratio':>12}")
    for batch in args.batches:
        plain, cached = rows[(batch, 0)], rows[(batch, args.micro)]
        print(f"{batch:>6} | {plain['samples_per_s']:>15.1f} {plain['peak_rss_mb']:>13.0f} | "
              f"{cached['samples_per_s']:>19.1f} {cached['peak_rss_mb']:>17.0f} | "
              f"{plain['peak_rss_mb'] / cached['peak_rss_mb']:>11.2f}x")
    first, last = args.batches[0], args.batches[-1]
    grow_plain = rows[(last, 0)]["peak_rss_mb"] / rows[(first, 0)]["peak_rss_mb"]
    grow_cached = rows[(last, args.micro)]["peak_rss_mb"] / rows[(first, args.micro)]["peak_rss_mb"]
    print(f"peak memory growth from batch {first} to {last}: plain {grow_plain:.2f}x, GradCache {grow_cached:.2f}x "
          f"(micro-batch {args.micro})")


if __name__ == "__main__":
    main()
