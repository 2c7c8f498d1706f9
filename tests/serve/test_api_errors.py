"""Bad input, limits and safety: every problem is a JSON 4xx naming it; no tracebacks; no paths read."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from serve_support import b64, png_bytes

RED = b64(png_bytes((220, 20, 20)))

# (case, method path, JSON body, status, error code, words the message must contain)
BAD_JSON = [
    ("malformed base64", "/search", {"image": "abc$%^&*"}, 422, "invalid_base64", "body.image: not valid base64"),
    ("bad padding", "/embed", {"items": [{"image": "abcde"}]}, 422, "invalid_base64", "body.items.0.image"),
    ("non-image bytes", "/search", {"image": b64(b"just some text, not a PNG")}, 422, "invalid_image",
     "not a readable image"),
    ("truncated png", "/embed", {"items": [{"image": b64(png_bytes((1, 2, 3))[:60])}]}, 422, "invalid_image",
     "body.items.0.image"),
    ("data url not base64", "/search", {"image": "data:image/png,abc"}, 422, "invalid_image", "base64-encoded"),
    ("text wrong type", "/search", {"text": 5}, 422, "invalid_request", "body.text: Input should be a valid string"),
    ("k wrong type", "/search", {"text": "x", "k": "ten"}, 422, "invalid_request", "body.k"),
    ("k zero", "/search", {"text": "x", "k": 0}, 422, "invalid_request", "body.k"),
    ("k over server limit", "/search", {"text": "x", "k": 500}, 422, "invalid_request", "limit of 100"),
    ("items not a list", "/embed", {"items": "hello"}, 422, "invalid_request", "body.items"),
    ("items empty", "/embed", {"items": []}, 422, "invalid_request", "body.items"),
    ("missing items", "/embed", {}, 422, "invalid_request", "body.items: Field required"),
    ("bad role", "/embed", {"items": [{"text": "x"}], "role": "boss"}, 422, "invalid_request", "body.role"),
    ("empty query", "/search", {"text": "   "}, 422, "empty_item", "give text, an image, or both"),
    ("empty item", "/embed", {"items": [{"text": "a"}, {}]}, 422, "empty_item", "body.items.1"),
    ("unknown modality", "/search", {"text": "x", "modality": "audio"}, 422, "invalid_request", "unknown modality"),
    ("unknown field", "/search", {"text": "x", "colour": "red"}, 422, "invalid_request", "body.colour: unknown field"),
    ("path field", "/embed", {"items": [{"image_path": "/etc/hosts"}]}, 422, "invalid_request",
     "image paths are not accepted"),
    ("text too long", "/search", {"text": "a" * 9000}, 422, "text_too_long", "over the limit of 8,000"),
    ("rerank without candidates", "/rerank", {"query": {"text": "x"}, "candidates": []}, 422, "invalid_request",
     "body.candidates"),
]


@pytest.mark.parametrize(("case", "path", "body", "status", "code", "words"), BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_bad_json_input_is_a_clear_4xx(client, case, path, body, status, code, words) -> None:
    res = client.post(path, json=body)
    assert res.status_code == status, res.text
    assert res.headers["content-type"] == "application/json"
    assert res.json()["error"] == code and words in res.json()["detail"]


def test_malformed_json_body(client) -> None:
    for path in ("/search", "/embed"):
        res = client.post(path, content=b'{"text": "unterminated', headers={"content-type": "application/json"})
        assert res.status_code == 422 and res.json()["error"] == "invalid_request"
        assert "JSON" in res.json()["detail"]


def test_unsupported_content_type(client) -> None:
    res = client.post("/embed", content=b"hello", headers={"content-type": "text/plain"})
    assert res.status_code == 415 and "text/plain" in res.json()["detail"]


def test_oversized_image_by_pixels_is_413_before_decoding(make_client) -> None:
    client = make_client(max_image_pixels=1000)
    res = client.post("/search", json={"image": b64(png_bytes((1, 2, 3), (40, 30)))})
    assert res.status_code == 413 and res.json() == {
        "error": "image_too_large", "detail": "body.image: image is 40x30 = 1,200 pixels, over the limit of 1,000; "
        "downscale it"}
    assert client.post("/search", json={"image": b64(png_bytes((1, 2, 3), (30, 30)))}).status_code == 200


def test_decompression_bomb_with_default_limit(client) -> None:
    buf = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buf, format="PNG")  # 36 M pixels, a few KB on the wire
    res = client.post("/embed", json={"items": [{"image": b64(buf.getvalue())}]})
    assert res.status_code == 413 and "6000x6000" in res.json()["detail"]


def test_oversized_request_body_is_413(make_client) -> None:
    client = make_client(max_request_bytes=2000)
    res = client.post("/embed", json={"items": [{"text": "x" * 3000}]})
    assert res.status_code == 413 and res.json()["error"] == "request_too_large"

    def chunks():  # no Content-Length: the limit is enforced while the body streams in
        for _ in range(10):
            yield b" " * 500

    res = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert res.status_code == 413 and "2,000 bytes" in res.json()["detail"]


def test_too_many_items(make_client) -> None:
    res = make_client(max_items=2).post("/embed", json={"items": [{"text": "a"}] * 3})
    assert res.status_code == 422 and "3 items, over the limit of 2" in res.json()["detail"]


def test_server_never_reads_a_client_path(client, toy_index_dir) -> None:
    real = toy_index_dir.parent / "images" / "i-red.png"
    assert real.is_file()
    for value in (str(real), f"file://{real}", "../images/i-red.png", "/etc/hosts"):
        res = client.post("/search", json={"image": value})
        assert res.status_code == 422, value
        assert "file paths are not accepted" in res.json()["detail"] or "not a readable image" in res.json()["detail"]


def test_multipart_errors(client) -> None:
    res = client.post("/embed", files={"image": ("x.png", b"not an image", "image/png")})
    assert res.status_code == 422 and res.json()["detail"].startswith("form.image: not a readable image")
    res = client.post("/embed", data={"image": "/etc/hosts"}, files={"dummy": ("a", b"b")})
    assert res.status_code == 422 and "dummy" in res.json()["detail"]
    res = client.post("/embed", files={"image": (None, "/etc/hosts"), "text": (None, "x")})  # plain fields
    assert res.status_code == 422 and res.json()["detail"].startswith("form.image: must be an uploaded file")
    res = client.post("/embed", data={"text": "x"})  # form-urlencoded is not an accepted body
    assert res.status_code == 415
    res = client.post("/embed", data={"role": "boss", "text": "x"}, files={"image": ("x.png", png_bytes((1, 1, 1)))})
    assert res.status_code == 422 and "form.role" in res.json()["detail"]


def test_token_required_when_set(make_client) -> None:
    client = make_client(token="s3cret")
    res = client.post("/search", json={"text": "cat"})
    assert res.status_code == 401 and res.json() == {
        "error": "unauthorized", "detail": "missing bearer token: send 'Authorization: Bearer <token>'"}
    assert res.headers["www-authenticate"] == "Bearer"
    wrong = client.post("/search", json={"text": "cat"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong bearer token"
    for path in ("/items/t-cat", "/items/i-red/thumbnail"):
        assert client.get(path).status_code == 401
    assert client.post("/embed", json={"items": [{"text": "x"}]}).status_code == 401
    ok = client.post("/search", json={"text": "cat"}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert client.get("/health").json()["auth"] is True  # health and the page stay open
    assert client.get("/").status_code == 200


def test_model_failure_fails_only_that_request_without_a_traceback(client) -> None:
    res = client.post("/embed", json={"items": [{"text": "ok"}, {"text": "please explode"}]})
    assert res.status_code == 500 and res.json()["error"] == "model_error"
    assert "Traceback" not in res.text and "exploded" not in res.text
    assert client.post("/search", json={"text": "sleeping cat", "k": 1}).status_code == 200


def test_unexpected_errors_are_json_500_without_details(client) -> None:
    client.app.state.index.search = None  # type: ignore[assignment]  # sabotage: calling it raises TypeError
    res = client.post("/search", json={"text": "cat"})
    assert res.status_code == 500 and res.json() == {
        "error": "internal_error", "detail": "internal server error; the server log has the details"}


def test_cors_is_off_by_default_and_opt_in(make_client) -> None:
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    res = make_client().options("/search", headers=headers)
    assert "access-control-allow-origin" not in res.headers
    res = make_client().post("/search", json={"text": "cat"}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in res.headers
    allowed = make_client(cors_origins=["https://ok.example"])
    res = allowed.options("/search", headers={**headers, "Origin": "https://ok.example"})
    assert res.headers["access-control-allow-origin"] == "https://ok.example"
    res = allowed.options("/search", headers=headers)
    assert res.headers.get("access-control-allow-origin") != "https://evil.example"


def test_unknown_route_and_method_are_json(client) -> None:
    res = client.get("/nope")
    assert res.status_code == 404 and res.json()["error"] == "not_found"
    res = client.get("/search")
    assert res.status_code == 405 and res.json()["error"] == "method_not_allowed"


def test_undecodable_body_is_400(client) -> None:
    res = client.post("/search", content=b'{"text": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert res.status_code in (400, 422) and res.json()["error"] in ("invalid_body", "invalid_request")
    res = client.post("/search", content=b"\x5e\xa9", headers={"content-type": "application/json"})
    assert res.status_code == 400 and res.json() == {
        "error": "invalid_body", "detail": "the request body could not be decoded; send UTF-8 JSON"}
