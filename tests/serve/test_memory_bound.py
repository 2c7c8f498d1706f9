"""The server's memory under an image attack stays under a stated bound (a real `umr serve` process, its peak RSS
read from /proc). Before the limits, one 173 KB request of 64 one-colour PNGs at the pixel limit took ~4 GB."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

HERE = Path(__file__).resolve().parent
#: peak RSS growth allowed over the idle server: the 64 M in-flight pixels decoded (~190 MB as RGB) plus the
#: decoder's and the model's working copies; without the limits, this attack took ~4 GB
BOUND_MB = 700


def tiny_file_png(size: tuple[int, int], colour: int = 0) -> str:
    buf = io.BytesIO()
    Image.new("L", size, colour).save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def rss_mb(pid: int, key: str) -> float:
    """VmRSS (now) or VmHWM (peak since start) of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from Linux /proc")
def test_image_attack_keeps_server_memory_bounded(toy_index_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    argv = ["serve", "--index", str(toy_index_dir), "--port", str(port), "--log-level", "warning"]
    code = f"import sys; from umr.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
                time.sleep(0.1)
            assert client.post("/search", json={"image": tiny_file_png((64, 64)), "k": 1}).status_code == 200
            idle = rss_mb(proc.pid, "VmRSS")

            bomb = {"items": [{"image": tiny_file_png((4000, 4000))} for _ in range(64)]}  # 64 × 16 M pixels
            at_limit = {"items": [{"image": tiny_file_png((2000, 2000), c)} for c in range(8)]}  # 32 M: allowed

            def post(body: dict) -> int:
                return client.post("/embed", json=body).status_code

            with ThreadPoolExecutor(12) as pool:
                codes = list(pool.map(post, [bomb] * 4 + [at_limit] * 8))
            peak = rss_mb(proc.pid, "VmHWM")
            assert codes[:4] == [413] * 4
            assert set(codes[4:]) <= {200, 429} and 200 in codes[4:], codes
            assert client.post("/search", json={"text": "sleeping cat", "k": 1}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"server RSS: idle {idle:.0f} MB, peak under attack {peak:.0f} MB (+{peak - idle:.0f} MB); "
          f"answers {codes}")
    assert peak - idle < BOUND_MB, f"peak RSS grew by {peak - idle:.0f} MB under the attack (bound {BOUND_MB} MB)"
