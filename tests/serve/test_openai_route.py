"""/v1/embeddings and /v1/models: the same vectors, limits and auth as /embed, in OpenAI's dialect and error body."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from serve_support import b64, png_bytes, running_server

RED = "data:image/png;base64," + b64(png_bytes((220, 20, 20)))
BLUE = "data:image/png;base64," + b64(png_bytes((20, 40, 220)))


def image(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def vectors(res: httpx.Response) -> np.ndarray:
    assert res.status_code == 200, res.text
    return np.array([d["embedding"] for d in res.json()["data"]])


# (case, JSON body, status, error code, words the message must contain)
BAD = [
    ("token ids", {"input": [[101, 2023]]}, 422, "invalid_request", "body.input.0: token ids are not accepted"),
    ("one token list", {"input": [101, 2023]}, 422, "invalid_request", "check_embedding_ctx_length=False"),
    ("unknown field", {"input": "x", "truncate": 5}, 422, "invalid_request", "body.truncate: unknown field"),
    ("input and messages", {"input": "x", "messages": [{"role": "user", "content": "y"}]}, 422, "invalid_request",
     "either input"),
    ("neither", {"model": "toy-serve"}, 422, "invalid_request", "either input"),
    ("empty list", {"input": []}, 422, "invalid_request", "body.input: empty list"),
    ("empty string", {"input": ["a", " "]}, 422, "empty_item", "body.input.1"),
    ("text too long", {"input": "a" * 9000}, 422, "text_too_long", "body.input.0.text"),
    ("wrong model", {"model": "text-embedding-3-small", "input": "x"}, 404, "model_not_found", "'toy-serve'"),
    ("dimensions", {"input": "x", "dimensions": 32}, 422, "unsupported_dimensions", "makes 64-d vectors"),
    ("encoding", {"input": "x", "encoding_format": "int8"}, 422, "invalid_request", "body.encoding_format"),
    ("document with instruction", {"input": "x", "role": "document", "instruction": "Find it."}, 422,
     "invalid_request", "without an instruction"),
    ("two images", {"input": [[image(RED), image(BLUE)]]}, 422, "too_many_images", "body.input.0.1"),
    ("bad part", {"input": [[{"type": "audio", "audio": "x"}]]}, 422, "invalid_request", "body.input.0.0"),
    ("file url", {"input": [[image("file:///etc/hosts")]]}, 422, "invalid_image_url", "not a data: URL"),
    ("remote url off", {"input": [[image("http://169.254.169.254/x.png")]]}, 422, "image_url_not_allowed",
     "--allow-image-urls"),
    ("bad base64", {"input": [[image("data:image/png;base64,abc$")]]}, 422, "invalid_base64",
     "body.input.0.0.image_url.url"),
    ("image in system", {"messages": [{"role": "system", "content": [image(RED)]}]}, 422, "invalid_request",
     "body.messages.0.content: a system message holds the instruction"),
    ("assistant message", {"messages": [{"role": "assistant", "content": "x"}]}, 422, "invalid_request",
     "body.messages.0.role"),
]


@pytest.mark.parametrize(("case", "body", "status", "code", "words"), BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_an_openai_error_naming_the_field(client, case, body, status, code, words) -> None:
    res = client.post("/v1/embeddings", json=body)
    assert res.status_code == status, res.text
    error = res.json()["error"]
    assert error["code"] == code and words in error["message"], error
    assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


def test_same_vectors_as_embed_for_each_role(client) -> None:
    items = [{"text": "a red double decker bus"}, {"image": RED}, {"text": "a red card", "image": RED}]
    inputs = ["a red double decker bus", [image(RED)], [text("a red card"), image(RED)]]
    docs = vectors(client.post("/v1/embeddings", json={"model": "toy-serve", "input": inputs}))
    np.testing.assert_allclose(docs, client.post("/embed", json={"items": items, "role": "candidate"}).json()[
        "embeddings"], atol=1e-6)
    instruction = "Retrieve the best match."
    queries = vectors(client.post("/v1/embeddings", json={"input": inputs, "instruction": instruction}))
    expected = client.post("/embed", json={"items": [{**it, "instruction": instruction} for it in items]})
    np.testing.assert_allclose(queries, expected.json()["embeddings"], atol=1e-6)
    assert not np.allclose(queries[0], docs[0])  # the instruction reached the model
    # vLLM's messages form: a system message is the instruction, the user parts the item
    messages = [{"role": "system", "content": instruction},
                {"role": "user", "content": [text("a red card"), image(RED)]}]
    np.testing.assert_allclose(vectors(client.post("/v1/embeddings", json={"messages": messages}))[0],
                               queries[2], atol=1e-6)


def test_base64_usage_and_models(client) -> None:
    res = client.post("/v1/embeddings", json={"input": ["a red bus", "cat"], "encoding_format": "base64"}).json()
    import base64

    decoded = np.frombuffer(base64.b64decode(res["data"][1]["embedding"]), "<f4")
    plain = vectors(client.post("/v1/embeddings", json={"input": "cat"}))[0]
    np.testing.assert_allclose(decoded, plain, atol=1e-7)
    assert res["usage"] == {"prompt_tokens": 4, "total_tokens": 4}  # the toy model has no tokenizer: words
    models = client.get("/v1/models").json()
    assert [(m["id"], m["dim"], m["object"]) for m in models["data"]] == [("toy-serve", 64, "model")]


def test_limits_and_auth_are_the_servers(make_client) -> None:
    client = make_client(token="t0k", max_items=2, max_images=1, max_request_bytes=4096)
    for res in (client.get("/v1/models"), client.post("/v1/embeddings", json={"input": "x"})):
        assert res.status_code == 401 and res.json()["error"]["type"] == "authentication_error"
        assert "missing bearer token" in res.json()["error"]["message"]
    auth = {"Authorization": "Bearer t0k"}
    res = client.post("/v1/embeddings", json={"input": ["a", "b", "c"]}, headers=auth)
    assert res.status_code == 422 and "over the limit of 2" in res.json()["error"]["message"]
    res = client.post("/v1/embeddings", json={"input": [[image(RED)], [image(BLUE)]]}, headers=auth)
    assert res.status_code == 413 and res.json()["error"]["code"] == "too_many_images"
    res = client.post("/v1/embeddings", json={"input": "x" * 5000}, headers=auth)
    assert res.status_code == 413 and res.json()["error"]["code"] == "request_too_large"  # the body middleware
    assert client.post("/embed", json={"items": [{"text": "x" * 5000}]}, headers=auth).json()["error"] == \
        "request_too_large"  # umr's own routes keep their body


def test_remote_image_urls_when_the_operator_allows_them(make_client) -> None:
    """The server fetches an http URL (its own thumbnail route here) only with allow_image_urls."""
    client = make_client(allow_image_urls=True)
    with running_server(client.app) as base:
        url = f"{base}/items/i-red/thumbnail"
        jpeg = httpx.get(url).content
        got = vectors(client.post("/v1/embeddings", json={"input": [[image(url)]]}))
        expected = client.post("/embed", json={"items": [{"image": b64(jpeg)}], "role": "candidate"}).json()
        np.testing.assert_allclose(got[0], expected["embeddings"][0], atol=1e-6)
        res = client.post("/v1/embeddings", json={"input": [[image(f"{base}/items/nope/thumbnail")]]})
        assert res.status_code == 422 and "answered HTTP 404" in res.json()["error"]["message"]
