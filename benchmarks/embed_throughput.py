"""Embedding throughput: umr's batched encode vs a naive one-item-at-a-time loop, same tiny model, same items.

    .venv/bin/python benchmarks/embed_throughput.py [--recipe gme] [--n 256]

256 mixed items (short and long texts, images of several sizes, text+image). The baseline calls the same
model on one item at a time with no sorting or batching (what a research script usually does); umr sorts by
cost, packs micro-batches under a token budget and pads dynamically. Prints items/s for both and the ratio
(target ≥ 2×), after checking both give the same vectors.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

import numpy as np
import torch
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from umr import Item, load_embedder
from umr.models.tiny import build_tiny

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
WORDS = ["a", "small", "large", "red", "green", "blue", "circle", "square", "star", "on", "the", "left", "right",
         "with", "striped", "dotted", "pattern"]


def mixed_items(n: int, seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        kind = i % 3
        text = " ".join(rng.choice(WORDS) for _ in range(rng.choice([4, 12, 40, 90])))
        img = None
        if kind:
            w, h = rng.choice([(112, 112), (160, 90), (64, 200)])
            img = Image.new("RGB", (w, h), "white")
            ImageDraw.Draw(img).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=rng.choice(COLOURS))
        items.append(Item(text=text if kind != 1 else None, image=img, id=str(i)))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="gme")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        emb = load_embedder(str(build_tiny(args.recipe, f"{tmp}/m")))
        items = mixed_items(args.n)
        emb.encode(items[:8], batch_size=8)  # warm-up (allocator, kernels)

        t0 = time.perf_counter()
        with torch.inference_mode():
            naive = np.stack([emb.embed([it])[0].numpy() for it in items])
        naive_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        fast = emb.encode(items, batch_size=args.batch_size)
        umr_s = time.perf_counter() - t0

    diff = float(np.abs(fast - naive).max())
    print(f"recipe {args.recipe}, {args.n} mixed items, torch threads {torch.get_num_threads()}")
    print(f"naive one-at-a-time : {args.n / naive_s:8.1f} items/s")
    print(f"umr encode          : {args.n / umr_s:8.1f} items/s  (batch {args.batch_size}, length-sorted)")
    print(f"speed-up            : {naive_s / umr_s:8.2f}x  (target >= 2x); max |diff| = {diff:.2e}")


if __name__ == "__main__":
    main()
