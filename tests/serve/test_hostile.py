"""Hostile but fair clients: every input gets a 4xx with a message (never a 5xx), the work one request may cause
is bounded (413/429), slow bodies time out (408), and the server's file layout stays private."""

from __future__ import annotations

import io
import json
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serve_support import TEXTS, ToyEmbedder, b64, png_bytes, running_server

from umr.cli import build_parser, main
from umr.cli.cmd_serve import build_app

# sizes image processors crash on (a 1-pixel side is taken for the channel axis) or Qwen2-VL refuses (> 200:1)
BAD_SIZES = [(1, 1), (2, 2), (3, 3), (100, 1), (1, 100), (2, 500), (1000, 4)]


def tiny_file_png(size: tuple[int, int]) -> bytes:
    """A 1-bit PNG of one colour: a couple of KB on the wire, width × height × 3 bytes once decoded."""
    buf = io.BytesIO()
    Image.new("1", size).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def post_raw(client: TestClient, path: str, body: str) -> Any:
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("size", BAD_SIZES, ids=[f"{w}x{h}" for w, h in BAD_SIZES])
def test_tiny_and_skewed_images_are_422(make_client, size: tuple[int, int]) -> None:
    from serve_support import SeaScorer

    client = make_client(reranker=SeaScorer())
    image = b64(png_bytes((200, 30, 30), size))
    answers = [client.post("/search", json={"image": image}),
               client.post("/embed", json={"items": [{"text": "ok"}, {"image": image}]}),
               client.post("/embed", files={"image": ("x.png", png_bytes((200, 30, 30), size))}),
               client.post("/rerank", json={"query": {"text": "q"}, "candidates": [{"image": image}]})]
    for res, field in zip(answers, ("body.image", "body.items.1.image", "form.image", "body.candidates.0"),
                          strict=True):
        assert res.status_code == 422, res.text
        body = res.json()
        assert body["error"] in ("invalid_image", "invalid_item")
        assert body["detail"].startswith(field) and f"{size[0]}x{size[1]}" in body["detail"]


@pytest.mark.parametrize("name", ["tiny:gme", "tiny:mm-embed", "tiny:clip-sf"])
def test_the_limits_are_what_real_models_take(name: str) -> None:
    """The smallest and most skewed images the server accepts go through each backbone's own image processor
    (Qwen2-VL, LLaVA-NeXT, CLIP)."""
    from umr import Item, load_embedder
    from umr.items import MAX_ASPECT_RATIO, MIN_IMAGE_SIDE

    model = load_embedder(name, device="cpu")
    side = MIN_IMAGE_SIDE
    sizes = [(side, side), (side * MAX_ASPECT_RATIO, side), (side, side * MAX_ASPECT_RATIO), (side + 1, side + 2)]
    colours = [(9, 99, 199), (199, 9, 99), (99, 199, 9), (240, 240, 20)]  # one each, so each image is told apart
    vecs = model.encode_corpus([Item(image=Image.new("RGB", s, c)) for s, c in zip(sizes, colours, strict=True)])
    assert vecs.shape == (len(sizes), model.dim)
    assert np.isfinite(vecs).all() and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    # every image reached the model with its own pixels (a blank or dropped image would repeat a vector)
    gaps = np.abs(vecs[:, None, :] - vecs[None, :, :]).max(axis=-1) + np.eye(len(sizes))
    assert gaps.min() > 1e-4, gaps


SURROGATE_BODIES = [
    ("/search", '{"text": "\\ud800 x"}', "body.text"),
    ("/search", '{"text": "a cat", "instruction": "find \\udfff it"}', "body.instruction"),
    # /embed parses its own body with pydantic's JSON parser, which refuses the escape itself (naming the column)
    ("/embed", '{"items": [{"text": "ok"}, {"text": "x \\ud83d"}]}', "body: Invalid JSON"),
    ("/embed", '{"items": [{"text": "ok", "instruction": "\\udc00"}]}', "body: Invalid JSON"),
    ("/rerank", '{"query": {"text": "\\ud800"}, "candidates": [{"id": "t-sea"}]}', "body.query.text"),
    ("/rerank", '{"query": {"text": "q"}, "candidates": [{"text": "\\ud800"}]}', "body.candidates.0.text"),
    ("/rerank", '{"query": {"text": "q"}, "candidates": [{"id": "t-sea"}, {"id": "x\\udfff"}]}',
     "body.candidates.1.id"),  # was a 500: UnicodeEncodeError in the SQLite id lookup
]


@pytest.mark.parametrize(("path", "body", "field"), SURROGATE_BODIES)
def test_lone_surrogates_are_422(make_client, path: str, body: str, field: str) -> None:
    from serve_support import SeaScorer

    res = post_raw(make_client(reranker=SeaScorer()), path, body)
    assert res.status_code == 422, res.text
    code = "invalid_request" if path == "/embed" else "invalid_text"
    assert res.json()["error"] == code and res.json()["detail"].startswith(field), res.text


def test_a_valid_surrogate_pair_is_fine(client: TestClient) -> None:
    assert post_raw(client, "/search", '{"text": "a red bus \\ud83d\\ude8c"}').status_code == 200


def test_the_64_image_bomb_is_refused_before_decoding(make_client) -> None:
    """64 one-colour PNGs at the pixel limit: ~130 KB of body, 3 GB once decoded."""
    bomb = {"items": [{"image": b64(tiny_file_png((4000, 4000)))} for _ in range(64)]}
    assert len(json.dumps(bomb)) < 300_000
    res = make_client().post("/embed", json=bomb)
    assert res.status_code == 413 and res.json()["error"] == "too_many_images"
    assert "64 images" in res.json()["detail"] and "limit of 16" in res.json()["detail"]
    res = make_client(max_images=64).post("/embed", json=bomb)
    assert res.status_code == 413 and res.json()["error"] == "too_many_pixels"
    assert "1,024,000,000 pixels" in res.json()["detail"]


def test_a_request_within_its_limits_passes(make_client) -> None:
    items = [{"image": b64(tiny_file_png((2000, 2000)))} for _ in range(8)]  # 32 M pixels: exactly the limit
    res = make_client().post("/embed", json={"items": items})
    assert res.status_code == 200 and len(res.json()["embeddings"]) == 8


def test_server_busy_decoding_gives_429_then_recovers(make_client) -> None:
    client = make_client(queue_wait_s=0.2)
    budget = client.app.state.budget
    budget.used = budget.capacity  # other requests hold every pixel
    t0 = time.monotonic()
    res = client.post("/search", json={"image": b64(png_bytes((20, 40, 220)))})
    assert res.status_code == 429 and res.json()["error"] == "server_busy"
    assert res.headers["retry-after"] == "1" and 0.15 < time.monotonic() - t0 < 5
    assert client.post("/search", json={"text": "sleeping cat"}).status_code == 200  # text needs no pixels
    budget.used = 0
    assert client.post("/search", json={"image": b64(png_bytes((20, 40, 220)))}).status_code == 200
    assert budget.used == 0 and budget.peak > 0  # released after the request


def test_full_model_queue_gives_429(make_client) -> None:
    client = make_client(max_queued_items=4)
    client.app.state.gate.pending = 4
    res = client.post("/embed", json={"items": [{"text": "a"}]})
    assert res.status_code == 429 and res.json()["error"] == "server_busy" and "waiting for the model" in res.text
    client.app.state.gate.pending = 0
    assert client.post("/embed", json={"items": [{"text": "a"}]}).status_code == 200


def test_half_open_body_times_out_with_408(toy_index_dir: Path) -> None:
    from umr.index import load_index
    from umr.serve.app import ServeSettings, create_app

    app = create_app(load_index(toy_index_dir), ToyEmbedder(), ServeSettings(body_timeout_s=0.5))
    with running_server(app) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"text\": ")
            t0 = time.monotonic()
            chunks = [sock.recv(4096)]
            waited = time.monotonic() - t0
            while chunks[-1]:  # the headers and the body may come in separate segments; the server then closes
                chunks.append(sock.recv(4096))
            reply = b"".join(chunks).decode()
        assert reply.startswith("HTTP/1.1 408") and "body_timeout" in reply and waited < 5


def _length(reply: bytes) -> int:
    head = reply.partition(b"\r\n\r\n")[0].decode().lower()
    return int(head.split("content-length:")[1].split()[0]) if "content-length:" in head else 0


def test_a_half_sent_request_head_is_closed(toy_index_dir: Path) -> None:
    """uvicorn alone waits for ever on a connection that never finishes its head (a slowloris)."""
    from umr.index import load_index
    from umr.serve.app import ServeSettings, create_app
    from umr.serve.connection_limits import uvicorn_limits

    app = create_app(load_index(toy_index_dir), ToyEmbedder(), ServeSettings())
    with running_server(app, **uvicorn_limits(header_timeout_s=0.5, max_connections=100)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as slow, \
                socket.create_connection((host, int(port)), timeout=10) as fine:
            slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and nothing more
            fine.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = fine.recv(4096)
            while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _length(reply):
                reply += fine.recv(4096)  # head and body may come in separate segments
            assert reply.startswith(b"HTTP/1.1 200")
            assert slow.recv(4096) == b""  # closed by the server, well before the 10 s socket timeout
            # a kept-alive connection gets the same limit. Under load the server may already have closed it while
            # the slow one was waited for; the send then meets a reset, which is that closing seen earlier.
            try:
                fine.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                assert fine.recv(4096) == b""
            except ConnectionResetError:
                pass


def test_serve_sets_its_limits_explicitly(monkeypatch: pytest.MonkeyPatch, toy_index_dir: Path) -> None:
    import uvicorn

    import umr.cli.cmd_serve as cmd_serve

    seen: dict[str, Any] = {}
    monkeypatch.setattr(cmd_serve, "build_app", lambda args: object())
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    assert main(["serve", "--index", str(toy_index_dir), "--max-connections", "50"]) == 0
    assert seen["limit_concurrency"] == 50 and seen["timeout_keep_alive"] == 5
    assert seen["h11_max_incomplete_event_size"] == 64 * 1024 and seen["http"].__name__ == "HeadTimeoutH11"


class PathModel(ToyEmbedder):
    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": 64, "model": "/home/alice/secret-project/checkpoints/final"}


def test_health_hides_the_model_path_without_the_token(make_client) -> None:
    open_server = make_client(embedder=PathModel())
    assert open_server.get("/health").json()["model"]["model"] == "final"
    assert open_server.post("/embed", json={"items": [{"text": "a"}]}).json()["model"]["model"] == "final"
    guarded = make_client(embedder=PathModel(), token="s3cret")
    assert guarded.get("/health").json()["model"]["model"] == "final"
    assert guarded.get("/health", headers={"Authorization": "Bearer wrong"}).json()["model"]["model"] == "final"
    full = guarded.get("/health", headers={"Authorization": "Bearer s3cret"}).json()["model"]
    assert full["model"] == "/home/alice/secret-project/checkpoints/final"


def test_public_host_needs_a_token(toy_index_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from umr.cli.cmd_serve import check_exposure

    assert main(["serve", "--index", str(toy_index_dir), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--host 0.0.0.0" in err and "--token" in err and "--insecure" in err and "Traceback" not in err
    check_exposure("0.0.0.0", "t0k", False)
    check_exposure("0.0.0.0", None, True)
    check_exposure("127.0.0.1", None, False)


def test_thumbnails_resolve_against_the_index_not_the_working_directory(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "data" / "images").mkdir(parents=True)
    (project / "data" / "images" / "red.png").write_bytes(png_bytes((220, 20, 20), (40, 40)))
    (project / "data" / "items.jsonl").write_text('{"id": "red", "image": "images/red.png"}\n'
                                                  '{"id": "t", "text": "a text"}\n')
    monkeypatch.chdir(project)
    assert main(["index", "build", "--model", "py:serve_support:ToyEmbedder", "--corpus", "data/items.jsonl",
                 "--out", "runs/job", "--no-progress"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with TestClient(build_app(build_parser().parse_args(["serve", "--index", str(project / "runs/job")]))) as c:
        res = c.get("/items/red/thumbnail")
        assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"


def test_thumbnails_use_a_recorded_image_root(tmp_path: Path) -> None:
    from umr.index import create_index, load_index
    from umr.items import Item
    from umr.serve.app import ServeSettings, create_app

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "red.png").write_bytes(png_bytes((220, 20, 20), (40, 40)))
    model = ToyEmbedder()
    index = create_index(model.dim, info={"model": model.describe(), "image_root": str(tmp_path)})
    index.add(model.encode_corpus([Item(image=str(tmp_path / "data/red.png"))]), [{"id": "red", "image":
                                                                                  "data/red.png"}])
    index.save(tmp_path / "runs" / "idx")
    app = create_app(load_index(tmp_path / "runs" / "idx"), model, ServeSettings(index_dir=tmp_path / "runs/idx"))
    with TestClient(app) as client:
        assert client.get("/items/red/thumbnail").status_code == 200


def test_an_index_without_a_recorded_model_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from umr.index import create_index
    from umr.items import Item

    model = ToyEmbedder()
    index = create_index(model.dim)  # no info: any 64-d model would run against it silently
    items = [Item(text=t, id=d) for d, t in TEXTS.items()]
    index.add(model.encode_corpus(items), items)
    index.save(tmp_path / "index")
    for verb in (["serve"], ["search", "--text", "cat"]):
        assert main([*verb, "--index", str(tmp_path), "--model", "py:serve_support:ToyEmbedder"]) == 2
        err = capsys.readouterr().err
        assert "does not record which model built it" in err and "Traceback" not in err


def test_an_empty_modality_list_is_422(client: TestClient) -> None:
    """`"modality": []` answered 200 with no results, which reads as a model that finds nothing."""
    res = client.post("/search", json={"text": "a red bus", "modality": []})
    assert res.status_code == 422 and res.json()["detail"].startswith("body.modality: an empty modality list"), \
        res.text


def test_text_with_the_models_special_tokens_is_422(make_client, tmp_path: Path) -> None:
    """`<|image_pad|>` beside an image broke the forward: a 500 on /search, /embed and /rerank."""
    from serve_support import ToyEmbedder
    from transformers import AutoTokenizer

    from umr.models.special_text import special_text_problem
    from umr.models.tiny import build_tiny
    from umr.rerank.prompted import Reranker

    folder = build_tiny("gme", tmp_path / "gme")
    tokenizer = AutoTokenizer.from_pretrained(folder)

    class QwenTokenized(ToyEmbedder):  # the toy index's vectors, a real Qwen2-VL tokenizer's special tokens
        def text_problem(self, item):
            return special_text_problem(tokenizer, item)

    client = make_client(embedder=QwenTokenized(), reranker=Reranker(str(folder), device="cpu"))
    image = b64(png_bytes((200, 30, 30), (32, 32)))
    answers = [client.post("/search", json={"text": "a <|image_pad|> bus", "image": image}),
               client.post("/embed", json={"items": [{"text": "ok"}, {"text": "end<|im_end|>"}]}),
               client.post("/rerank", json={"query": {"text": "q <|vision_start|>"}, "candidates": [{"id": "t-sea"}]})]
    for res, token in zip(answers, ("<|image_pad|>", "<|im_end|>", "<|vision_start|>"), strict=True):
        assert res.status_code == 422, res.text
        assert f"holds the model's special token '{token}'" in res.json()["detail"], res.text
    assert client.post("/search", json={"text": "a red bus", "image": image}).status_code == 200
