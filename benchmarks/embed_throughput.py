"""Embedding throughput: how close `encode` gets to the model's own forward time, and how close that is to the
machine's matmul peak. Every ratio is against a baseline measured in the same run (best of --repeat).

    .venv/bin/python benchmarks/embed_throughput.py [--recipe gme] [--size 256x4 | --size gme-2b]
        [--n 256] [--photos 48] [--threads N] [--workers N] [--device cpu|cuda] [--repeat 2]

1. mixed items (short and long texts, small images, text+image; in memory): items/s of encode; the same
   micro-batches' forward-only time (prepared beforehand); encode / forward-only (goal <= 1.10).
2. JPEG photos on disk (1400 x 1050): prepare-only (decode, resize, processor, tokenizer; serial), forward-only
   and encode with worker processes; encode / max(prepare-only, forward-only) (goal <= 1.2: the two overlap).
3. achieved GFLOP/s of the forward passes (FLOPs counted by torch's FlopCounterMode) and its % of a matmul peak
   measured here (a 2048^3 torch.mm in the model's dtype).
4. bf16 vs fp32: items/s of encode in each on the mixed items, and the lowest cosine between their vectors.

--size gme-2b builds a Qwen2-VL with GME-2B's published config (1536 wide, 28 layers, a 32-layer 1280-wide ViT)
and random weights, with the tiny model's tokenizer and processor; meant for a GPU (`--device cuda`).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from umr import Item, load_embedder
from umr.models.base import Embedder, plan_batches
from umr.models.prefetch import workers_for
from umr.models.tiny import build_tiny, parse_tiny_name

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
WORDS = ["a", "small", "large", "red", "green", "blue", "circle", "square", "star", "on", "the", "left", "right",
         "with", "striped", "dotted", "pattern"]
#: GME-2B's text and vision towers (the hub config of Alibaba-NLP/gme-Qwen2-VL-2B-Instruct, i.e. Qwen2-VL-2B)
GME_2B_TEXT = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                   num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6,
                   rms_norm_eps=1e-6, tie_word_embeddings=True,
                   rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]})
GME_2B_VISION = dict(depth=32, embed_dim=1280, mlp_ratio=4, num_heads=16, in_channels=3, hidden_size=1536,
                     patch_size=14, spatial_merge_size=2, temporal_patch_size=2)


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


def photo_items(n: int, folder: Path, seed: int = 0) -> list[Item]:
    """n JPEG files of 1400 x 1050 with photo-like detail (gradients, shapes, sensor noise), as users have them."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:1050, 0:1400]
    items = []
    for i in range(n):
        base = np.stack([(x * (i % 5 + 1) // 6) % 256, (y // 4 + 30 * i) % 256, ((x + y) // 11) % 256], -1)
        img = Image.fromarray(np.clip(base + rng.normal(0, 18, base.shape), 0, 255).astype(np.uint8))
        ImageDraw.Draw(img).ellipse((200 + 10 * i, 150, 900, 800), fill=COLOURS[i % len(COLOURS)])
        path = folder / f"photo{i:03d}.jpg"
        img.save(path, quality=90)
        items.append(Item(image=str(path), id=path.stem))
    return items


def gme_2b(tiny_dir: str, device: str, dtype: str) -> Embedder:
    """The tiny GME embedder with its model swapped for a random Qwen2-VL of GME-2B's size (same token ids), at
    GME's own image budget (256..1280 tokens an image; the tiny models keep 16)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    emb = load_embedder(tiny_dir, device=device, dtype=dtype, min_image_tokens=256, max_image_tokens=1280)
    tiny = emb.backbone.model.config
    ids = {k: getattr(tiny, k) for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                         "vision_end_token_id")}
    config = Qwen2VLConfig(text_config=GME_2B_TEXT, vision_config=GME_2B_VISION, attn_implementation="sdpa", **ids)
    torch.manual_seed(0)
    with torch.device(emb.device):
        model = Qwen2VLForConditionalGeneration(config)
    emb.backbone.model = model.to(emb.dtype).eval()
    return emb


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_time(fn: Callable[[], Any], device: torch.device, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def batches_of(emb: Embedder, items: list[Item], batch_size: int) -> list[list[Item]]:
    return [[items[i] for i in idx] for idx in plan_batches([emb.cost(it) for it in items], batch_size,
                                                            emb.max_batch_tokens)]


def forward_all(emb: Embedder, prepared: list[Any]) -> None:
    with torch.inference_mode():
        for batch in prepared:
            emb.forward(batch)


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process and by its finished children (the prepare workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def phases(emb: Embedder, items: list[Item], args: argparse.Namespace, batch_size: int) -> dict[str, Any]:
    """Wall and CPU seconds of prepare-only (serial), forward-only (on batches already on the device), encode with
    workers and encode inline (0 workers). Each round runs all four, so that a busy neighbour slows them alike;
    the best round counts. CPU seconds (main process, workers) do not grow when other jobs share the cores, so
    they show what wall times on a quiet machine would."""
    groups = batches_of(emb, items, batch_size)
    prepared = [emb.to_device(emb.prepare_host(g)) for g in groups]
    forward_all(emb, prepared)  # warm-up at these shapes (oneDNN builds its kernels per shape)
    runs: dict[str, Callable[[], Any]] = {
        "prepare": lambda: [emb.prepare_host(g) for g in groups],
        "forward": lambda: forward_all(emb, prepared),
        "encode": lambda: emb.encode(items, batch_size=batch_size, num_workers=args.workers),
        "inline": lambda: emb.encode(items, batch_size=batch_size, num_workers=0),
    }
    best: dict[str, tuple[float, float, float]] = {}
    for _ in range(args.repeat):
        for name, run in runs.items():
            cpu0 = cpu_seconds()
            wall = best_time(run, emb.device, 1)
            cpu1 = cpu_seconds()
            sample = (wall, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
            best[name] = min(best.get(name, sample), sample)
    requested = args.workers if args.workers is not None else emb.num_workers
    return {**{name: wall for name, (wall, _, _) in best.items()}, "cpu": best, "batches": len(groups),
            "workers": workers_for(requested, emb.device, len(groups))}


def critical_cpu(p: dict[str, Any]) -> tuple[float, float]:
    """CPU-second versions of the two ratios: encode's main process (what waits on the model) over forward-only,
    and the busier side of encode (main process, or one worker's share) over the larger of prepare / forward."""
    cpu = p["cpu"]
    main, workers = cpu["encode"][1], cpu["encode"][2] / max(1, p["workers"])
    return main / cpu["forward"][1], max(main, workers) / max(cpu["prepare"][1], cpu["forward"][1])


def forward_flops(emb: Embedder, items: list[Item], batch_size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    prepared = [emb.to_device(emb.prepare_host(g)) for g in batches_of(emb, items, batch_size)]
    with FlopCounterMode(display=False) as counter:
        forward_all(emb, prepared)
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device, dtype: torch.dtype, repeat: int) -> tuple[float, float]:
    """GFLOP/s of a 2048^3 matmul, the best this machine does in that dtype with these threads: per wall second
    and per CPU second of this process (the latter unaffected by other jobs on the cores)."""
    a = torch.randn(2048, 2048, device=device, dtype=dtype)
    b = torch.randn(2048, 2048, device=device, dtype=dtype)
    torch.mm(a, b)
    cpu0 = cpu_seconds()[0]
    wall = best_time(lambda: torch.mm(a, b), device, 3 * repeat)
    cpu = (cpu_seconds()[0] - cpu0) / (3 * repeat)  # the mean, so a little above the best
    return 2 * 2048**3 / wall / 1e9, 2 * 2048**3 / cpu / 1e9


def load(args: argparse.Namespace, folder: str, dtype: str) -> Embedder:
    if args.size == "gme-2b":
        return gme_2b(folder, args.device, dtype)
    return load_embedder(folder, device=args.device, dtype=dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="gme", help="a tiny model's recipe (gme, lamra, u-marvel, mm-embed)")
    parser.add_argument("--size", default="256x4", help="<hidden>x<layers> of the tiny model, or gme-2b")
    parser.add_argument("--n", type=int, default=256, help="mixed items")
    parser.add_argument("--photos", type=int, default=48, help="JPEG files (0: skip)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--photo-batch", type=int, default=8, help="batch size for the photos (several batches "
                        "are needed for preparation to overlap the model)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--workers", type=int, default=None, help="prepare workers (default: umr's for the device)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best counts")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = {} if args.size == "gme-2b" else parse_tiny_name(f"{args.recipe}@{args.size}")[1]
    dtypes = ["bf16", "fp32"] if device.type == "cuda" else ["fp32", "bf16"]  # the device's default first
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(build_tiny(args.recipe, f"{tmp}/model", **sizes))
        emb = load(args, folder, dtypes[0])
        mixed = mixed_items(args.n)
        emb.encode(mixed[:16], batch_size=8)  # warm-up (allocator, kernels)
        print(f"{args.recipe} {args.size}, {emb.dtype}, {device}, torch threads {torch.get_num_threads()}, "
              f"{os.cpu_count()} CPUs, batch {args.batch_size}, best of {args.repeat}")

        m = phases(emb, mixed, args, args.batch_size)
        print(f"[mixed x{args.n}] encode {args.n / m['encode']:.1f} items/s ({m['batches']} batches, "
              f"{m['workers']} workers); prepare-only {m['prepare']:.2f}s, forward-only {m['forward']:.2f}s, "
              f"encode {m['encode']:.2f}s (inline {m['inline']:.2f}s); encode / forward-only = "
              f"{m['encode'] / m['forward']:.2f} (goal <= 1.10; inline {m['inline'] / m['forward']:.2f}); in CPU "
              f"seconds {critical_cpu(m)[0]:.2f}")

        if args.photos:
            photos = photo_items(args.photos, Path(tmp))
            p = phases(emb, photos, args, args.photo_batch)
            slowest = max(p["prepare"], p["forward"])
            print(f"[JPEG x{args.photos}, 1400x1050, batch {args.photo_batch}] prepare-only {p['prepare']:.2f}s, "
                  f"forward-only {p['forward']:.2f}s, encode {p['encode']:.2f}s ({p['workers']} workers), inline "
                  f"{p['inline']:.2f}s; encode / max(prepare, forward) = {p['encode'] / slowest:.2f} (goal <= 1.2; "
                  f"inline {p['inline'] / slowest:.2f}); in CPU seconds {critical_cpu(p)[1]:.2f}")

        flops = forward_flops(emb, mixed, args.batch_size)
        peak, peak_cpu = matmul_peak(device, emb.dtype, args.repeat)
        achieved, achieved_cpu = flops / m["forward"] / 1e9, flops / m["cpu"]["forward"][1] / 1e9
        print(f"[FLOPs] {flops / 1e9:.1f} GFLOP for the mixed items: {achieved:.1f} GFLOP/s in forward "
              f"({100 * achieved / peak:.0f}% of the {peak:.0f} GFLOP/s {emb.dtype} matmul peak measured here), "
              f"{flops / m['encode'] / 1e9:.1f} GFLOP/s in encode"
              + (f"; per CPU second {achieved_cpu:.1f} of {peak_cpu:.0f} GFLOP/s "
                 f"({100 * achieved_cpu / peak_cpu:.0f}%)" if device.type == "cpu" else ""))

        other = load(args, folder, dtypes[1])
        other.encode(mixed[:16], batch_size=8)
        embs = dict(zip(dtypes, (emb, other)))
        vecs: dict[str, np.ndarray] = {}
        seconds: dict[str, list[float]] = {name: [] for name in dtypes}
        for _ in range(args.repeat):  # alternating, so that a busy neighbour slows both alike
            for name, e in embs.items():
                t0 = time.perf_counter()
                vecs[name] = e.encode(mixed, batch_size=args.batch_size, num_workers=args.workers)
                sync(device)
                seconds[name].append(time.perf_counter() - t0)
        fp32, bf16 = min(seconds["fp32"]), min(seconds["bf16"])
        other_peak = matmul_peak(device, other.dtype, args.repeat)[0]
        cos = float((vecs["bf16"] * vecs["fp32"]).sum(1).min())
        print(f"[dtype] encode fp32 {args.n / fp32:.1f} items/s, bf16 {args.n / bf16:.1f} items/s: bf16/fp32 = "
              f"{fp32 / bf16:.2f}x (matmul peak {other.dtype} {other_peak:.0f} GFLOP/s); lowest cosine bf16 vs "
              f"fp32 {cos:.4f}")

if __name__ == "__main__":
    main()
