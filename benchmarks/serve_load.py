"""Load test for `umr serve`: /search at fixed concurrency, request batching on vs off (loopback only).

    .venv/bin/python benchmarks/serve_load.py [--model tiny:gme] [--requests 1000] [--concurrency 32]
                                              [--image-fraction 0.25] [--invalid-fraction 0.35]
                                              [--max-wait-ms 5] [--torch-threads 1] [--json out.json]
    (--model text --image-fraction 0: the real MiniLM text embedder, text queries only)

Builds a small index (synthetic texts + rendered images) with the model, then for each mode starts
`umr serve` in its own process on 127.0.0.1, warms it up, and sends --requests calls from --concurrency
concurrent clients: valid /search queries (a mix of text and image) and, a share --invalid-fraction of them,
hostile ones (tiny or skewed images, lone surrogates, bad base64, 64-image bombs to /embed, …) that must get a
4xx. Prints per mode: errors (a valid request not answered in full, or an invalid one not given a 4xx), the
5xx count (must be 0), p50/p99 latency and throughput of the valid requests, the model calls the server made
(from /health), its peak RSS (VmHWM) over its RSS when idle; then the throughput ratio on/off.
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
    from umr.index import create_index
    from umr.items import Item
    from umr.models.registry import load_embedder

    embedder = load_embedder(model)
    items = [Item(text=f"a {c} {s} {p}", id=f"t-{c}-{s}-{i}") for c in COLOURS for s in SHAPES
             for i, p in enumerate(PLACES)]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for c in COLOURS:
        for s in SHAPES:
            path = folder / "images" / f"{c}-{s}.png"
            render(c, s).save(path)
            items.append(Item(image=str(path), id=f"i-{c}-{s}"))
    t0 = time.perf_counter()
    vecs = embedder.encode_document(items, batch_size=32)
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


def png_b64(size: tuple[int, int], mode: str = "RGB") -> str:
    buf = io.BytesIO()
    Image.new(mode, size, 90).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def hostile(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    """(path, body) of requests a server must answer with a 4xx: each would have been a 5xx, a memory blow-up
    or a silent wrong answer without the checks."""
    bomb = {"items": [{"image": png_b64((4000, 4000), "1")} for _ in range(64)]}  # ~130 KB, 3 GB decoded
    kinds = [("/search", {"image": png_b64(s), "k": 5}) for s in [(1, 1), (2, 2), (100, 1), (2, 500), (1000, 4)]]
    kinds += [("/embed", {"items": [{"text": "ok"}, {"image": png_b64((1, 1))}]}),
              ("/search", {"text": "\ud800 x", "k": 5}), ("/search", {"text": "a cat", "instruction": "\udfff"}),
              ("/embed", {"items": [{"text": "x \ud83d"}]}), ("/search", {"image": "abc$%^", "k": 5}),
              ("/search", {"text": "x", "k": 0}), ("/search", {"text": "   "}), ("/search", {"colour": "red"}),
              ("/embed", {"items": []}), ("/embed", bomb)]
    rng = np.random.default_rng(seed)
    return [kinds[int(i)] for i in rng.integers(0, len(kinds), n)]


def mixed(n: int, image_fraction: float, invalid_fraction: float, seed: int = 0) -> list[tuple[str, dict, bool]]:
    """(path, body, valid) for n requests, the invalid ones spread at random."""
    n_bad = int(round(n * invalid_fraction))
    valid = [("/search", body, True) for body in queries(n - n_bad, image_fraction, seed)]
    bad = [(path, body, False) for path, body in hostile(n_bad, seed)]
    out = valid + bad
    order = np.random.default_rng(seed + 1).permutation(len(out))
    return [out[int(i)] for i in order]


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (peak since start) of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


async def load(base: str, requests: list[tuple[str, dict, bool]], concurrency: int, deadline_s: float) -> dict:
    """Send every request once from `concurrency` workers; latency per valid request, errors, 5xx, wall time."""
    latencies: list[float] = []
    server_ms: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    statuses: dict[int, int] = {}
    todo = iter(requests)
    stop_at = time.monotonic() + deadline_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        before = (await client.get("/health")).json()["batching"]

        async def worker() -> None:
            for path, body, valid in todo:
                if time.monotonic() > stop_at:
                    errors["deadline"] = errors.get("deadline", 0) + 1
                    continue
                t0 = time.perf_counter()
                try:
                    # json.dumps escapes lone surrogates (\ud800); httpx's own encoder would refuse to send them
                    res = await client.post(path, content=json.dumps(body).encode(),
                                            headers={"content-type": "application/json"})
                    statuses[res.status_code] = statuses.get(res.status_code, 0) + 1
                    if valid:
                        ok = res.status_code == 200 and len(res.json()["results"]) == body["k"]
                    else:
                        ok = 400 <= res.status_code < 500 and "detail" in res.json()
                    why = None if ok else f"{'valid' if valid else 'invalid'} → HTTP {res.status_code}"
                    if ok and valid:
                        for part, ms in res.json()["timings_ms"].items():
                            server_ms.setdefault(part, []).append(ms)
                except httpx.HTTPError as exc:
                    why = type(exc).__name__
                if valid:
                    latencies.append(time.perf_counter() - t0)
                if why:
                    errors[why] = errors.get(why, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        after = (await client.get("/health")).json()["batching"]
    lat = np.array(latencies) * 1e3
    return {"requests": len(requests), "invalid": sum(not v for _, _, v in requests), "errors": sum(errors.values()),
            "error_kinds": errors, "statuses": dict(sorted(statuses.items())),
            "5xx": sum(c for code, c in statuses.items() if code >= 500), "wall_s": wall,
            "req_per_s": len(requests) / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "model_calls": after["model_calls"] - before["model_calls"],
            "items": after["items"] - before["items"],
            "server_mean_ms": {part: float(np.mean(v)) for part, v in server_ms.items()}}


def run_mode(index: Path, batching: bool, args: argparse.Namespace) -> dict:
    port = free_port()
    proc = start_server(index, port, batching, args)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base, proc))
        asyncio.run(load(base, mixed(args.warmup, args.image_fraction, 0.0, seed=1), args.concurrency, 120))
        idle_rss = rss_mb(proc.pid)
        requests = mixed(args.requests, args.image_fraction, args.invalid_fraction)
        cpu0, own0 = process_cpu_s(proc.pid), time.process_time()
        result = asyncio.run(load(base, requests, args.concurrency, args.deadline_s))
        result["server_cpu_ms_per_req"] = (process_cpu_s(proc.pid) - cpu0) * 1e3 / len(requests)
        result["client_cpu_ms_per_req"] = (time.process_time() - own0) * 1e3 / len(requests)
        result["idle_rss_mb"], result["peak_rss_mb"] = idle_rss, rss_mb(proc.pid, "VmHWM")
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
    p.add_argument("--invalid-fraction", type=float, default=0.35,
                   help="share of hostile requests that must get a 4xx (default: 0.35)")
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
          f"{args.image_fraction:.0%} image queries, {args.invalid_fraction:.0%} hostile requests, max batch "
          f"{args.max_batch}, max wait {args.max_wait_ms} ms, {args.torch_threads or 'default'} model thread(s), "
          f"{os.cpu_count()} CPU cores")
    print(f"{'mode':<14}{'errors':>7}{'5xx':>5}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'model calls':>13}"
          f"{'items/call':>12}{'server CPU ms/req':>19}{'RSS idle → peak MB':>20}")
    for mode, r in results.items():
        print(f"{mode:<14}{r['errors']:>7}{r['5xx']:>5}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['req_per_s']:>9.1f}"
              f"{r['model_calls']:>13}{r['items'] / max(r['model_calls'], 1):>12.1f}"
              f"{r['server_cpu_ms_per_req']:>19.1f}{r['idle_rss_mb']:>11.0f} → {r['peak_rss_mb']:.0f}")
        print(f"  status codes: {r['statuses']}")
        if r["errors"]:
            print(f"  errors: {r['error_kinds']}")
    ratio = results["batching on"]["req_per_s"] / results["batching off"]["req_per_s"]
    print(f"throughput, batching on / off: {ratio:.2f}×")
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)}, "results": results,
                                         "ratio_on_off": ratio}, indent=1, default=str))
    return 0 if all(r["errors"] == 0 and r["5xx"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
