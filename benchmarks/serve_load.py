"""Load test for `umr serve`: /search at fixed concurrency, request batching on vs off (loopback only).

    .venv/bin/python benchmarks/serve_load.py [--model tiny:gme] [--requests 1000] [--concurrency 32]
                                              [--image-fraction 0.25] [--max-wait-ms 5] [--torch-threads 1]
                                              [--json out.json]
    (--model text --image-fraction 0: the real MiniLM text embedder, text queries only)

Builds a small index (synthetic texts + rendered images) with the model, then for each mode starts
`umr serve` in its own process on 127.0.0.1, warms it up, and sends --requests /search calls from
--concurrency concurrent clients (a mix of text and image queries). Prints errors, p50/p99 latency and
throughput per mode, the model calls the server made (from /health), and the throughput ratio on/off.
Bounded: every request has a timeout and each run a deadline; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220), "yellow": (230, 210, 40),
           "purple": (140, 50, 170), "orange": (240, 140, 30), "grey": (128, 128, 128), "black": (15, 15, 15)}
SHAPES = ["circle", "square", "triangle", "star", "ring", "cross"]
PLACES = ["on a beach", "in a kitchen", "on a white table", "in the snow", "on grass", "in a dark room"]


def render(colour: str, shape: str, size: int = 96) -> Image.Image:
    img = Image.new("RGB", (size, size), (235, 235, 235))
    draw, c, m = ImageDraw.Draw(img), COLOURS[colour], size // 5
    box = (m, m, size - m, size - m)
    {"circle": lambda: draw.ellipse(box, fill=c), "square": lambda: draw.rectangle(box, fill=c),
     "triangle": lambda: draw.polygon([(size // 2, m), (m, size - m), (size - m, size - m)], fill=c),
     "star": lambda: draw.regular_polygon((size // 2, size // 2, size // 2 - m), 5, fill=c),
     "ring": lambda: draw.ellipse(box, outline=c, width=size // 10),
     "cross": lambda: (draw.rectangle((size // 2 - m // 2, m, size // 2 + m // 2, size - m), fill=c),
                       draw.rectangle((m, size // 2 - m // 2, size - m, size // 2 + m // 2), fill=c))}[shape]()
    return img


def build_index(folder: Path, model: str) -> Path:
    """Texts for every colour × shape × place and one image per colour × shape, embedded with `model`."""
    from umr.cli.cmd_index import resolve_embedder
    from umr.index.base import create_index
    from umr.items import Item

    embedder = resolve_embedder(model)
    items = [Item(text=f"a {c} {s} {p}", id=f"t-{c}-{s}-{i}") for c in COLOURS for s in SHAPES
             for i, p in enumerate(PLACES)]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for c in COLOURS:
        for s in SHAPES:
            path = folder / "images" / f"{c}-{s}.png"
            render(c, s).save(path)
            items.append(Item(image=str(path), id=f"i-{c}-{s}"))
    t0 = time.perf_counter()
    vecs = embedder.encode_corpus(items, batch_size=32)
    print(f"index: {len(items)} items embedded with {model} in {time.perf_counter() - t0:.1f} s")
    index = create_index(embedder.dim, "flat", info={"model": embedder.describe(), "model_spec": model})
    index.add(vecs, items)
    index.save(folder / "index")
    return folder / "index"


def queries(n: int, image_fraction: float, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c, s = str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))
        if rng.random() < image_fraction:
            buf = io.BytesIO()
            render(c, s, 64).save(buf, format="PNG")
            out.append({"image": base64.b64encode(buf.getvalue()).decode(), "k": 10,
                        "instruction": "Retrieve an image similar to the given image.", "modality": "image"})
        else:
            out.append({"text": f"{c} {s} {rng.choice(PLACES)}", "k": 10,
                        "instruction": "Retrieve an image that matches the given caption."})
    return out


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), to show where the cores went."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, port: int, batching: bool, args: argparse.Namespace) -> subprocess.Popen:
    argv = ["serve", "--index", str(index), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--max-wait-ms", str(args.max_wait_ms), "--max-batch", str(args.max_batch),
            ] + (["--torch-threads", str(args.torch_threads)] if args.torch_threads else []) + \
        ([] if batching else ["--no-batching"])
    code = f"import sys; from umr.cli import main; sys.exit(main({argv!r}))"
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "HF_HUB_OFFLINE": "1"})


async def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with code {proc.returncode}")
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("server did not become ready in time")


async def load(base: str, bodies: list[dict], concurrency: int, deadline_s: float) -> dict:
    """Send every body once from `concurrency` workers; latency per request, errors, wall time."""
    latencies: list[float] = []
    server_ms: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    todo = iter(bodies)
    stop_at = time.monotonic() + deadline_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        before = (await client.get("/health")).json()["batching"]

        async def worker() -> None:
            for body in todo:
                if time.monotonic() > stop_at:
                    errors["deadline"] = errors.get("deadline", 0) + 1
                    continue
                t0 = time.perf_counter()
                try:
                    res = await client.post("/search", json=body)
                    ok = res.status_code == 200 and len(res.json()["results"]) == body["k"]
                    why = None if ok else f"HTTP {res.status_code}"
                    if ok:
                        for part, ms in res.json()["timings_ms"].items():
                            server_ms.setdefault(part, []).append(ms)
                except httpx.HTTPError as exc:
                    why = type(exc).__name__
                latencies.append(time.perf_counter() - t0)
                if why:
                    errors[why] = errors.get(why, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        after = (await client.get("/health")).json()["batching"]
    lat = np.array(latencies) * 1e3
    return {"requests": len(bodies), "errors": sum(errors.values()), "error_kinds": errors, "wall_s": wall,
            "req_per_s": len(bodies) / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "model_calls": after["model_calls"] - before["model_calls"],
            "items": after["items"] - before["items"],
            "server_mean_ms": {part: float(np.mean(v)) for part, v in server_ms.items()}}


def run_mode(index: Path, batching: bool, args: argparse.Namespace) -> dict:
    port = free_port()
    proc = start_server(index, port, batching, args)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base, proc))
        asyncio.run(load(base, queries(args.warmup, args.image_fraction, seed=1), args.concurrency, 120))
        bodies = queries(args.requests, args.image_fraction)
        cpu0, own0 = process_cpu_s(proc.pid), time.process_time()
        result = asyncio.run(load(base, bodies, args.concurrency, args.deadline_s))
        result["server_cpu_ms_per_req"] = (process_cpu_s(proc.pid) - cpu0) * 1e3 / len(bodies)
        result["client_cpu_ms_per_req"] = (time.process_time() - own0) * 1e3 / len(bodies)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny:gme", help="embedder for index and queries (default: tiny:gme)")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--warmup", type=int, default=64, help="requests sent before measuring (default: 64)")
    p.add_argument("--image-fraction", type=float, default=0.25, help="share of image queries (default: 0.25)")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    # 1 by default: on a small shared box the HTTP side and the load generator need the other cores, and torch's
    # spinning intra-op threads under contention made default-thread figures swing 0.1×–10× between runs.
    p.add_argument("--torch-threads", type=int, default=1,
                   help="model threads in the server (default: 1; 0 = torch's choice, as plain `umr serve`)")
    p.add_argument("--deadline-s", type=float, default=300, help="stop sending after this long (default: 300)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="umr-serve-load-") as tmp:
        index = build_index(Path(tmp), args.model)
        results = {mode: run_mode(index, mode == "batching on", args) for mode in ("batching on", "batching off")}
    print(f"\n/search × {args.requests} at concurrency {args.concurrency}, model {args.model}, "
          f"{args.image_fraction:.0%} image queries, max batch {args.max_batch}, max wait {args.max_wait_ms} ms, "
          f"{args.torch_threads or 'default'} model thread(s), {os.cpu_count()} CPU cores")
    print(f"{'mode':<14}{'errors':>7}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'model calls':>13}{'items/call':>12}"
          f"{'server CPU ms/req':>19}")
    for mode, r in results.items():
        print(f"{mode:<14}{r['errors']:>7}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['req_per_s']:>9.1f}"
              f"{r['model_calls']:>13}{r['items'] / max(r['model_calls'], 1):>12.1f}"
              f"{r['server_cpu_ms_per_req']:>19.1f}")
        if r["errors"]:
            print(f"  errors: {r['error_kinds']}")
    ratio = results["batching on"]["req_per_s"] / results["batching off"]["req_per_s"]
    print(f"throughput, batching on / off: {ratio:.2f}×")
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)}, "results": results,
                                         "ratio_on_off": ratio}, indent=1, default=str))
    return 0 if all(r["errors"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
