"""The HTTP API on a toy index with known answers: search, embed (JSON and multipart), items, re-rank."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from serve_support import COLOURS, TEXTS, SeaScorer, ToyEmbedder, b64, png_bytes

from umr.items import Item


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [h["id"] for h in response.json()["results"]]


def test_health_describes_the_index(client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["items"] == 7 and body["dim"] == 64
    assert body["modalities"] == {"image": 3, "image,text": 1, "text": 3}
    assert body["auth"] is False and body["rerank"] is False and body["batching"]["enabled"] is True


def test_text_query_ranks_the_matching_text_first(client) -> None:
    assert ids(client.post("/search", json={"text": "sleeping cat", "k": 3}))[0] == "t-cat"
    assert ids(client.post("/search", json={"text": "blue sea waves", "k": 1})) == ["t-sea"]


@pytest.mark.parametrize("did", sorted(COLOURS))
def test_image_query_with_modality_filter_finds_the_same_colour(client, did: str) -> None:
    query = png_bytes(tuple(max(c - 10, 0) for c in COLOURS[did]), (20, 30), "JPEG")
    found = ids(client.post("/search", json={"image": b64(query), "k": 3, "modality": "image"}))
    assert found[0] == did and len(found) == 3


def test_modality_filter_keeps_only_that_modality(client) -> None:
    res = client.post("/search", json={"text": "a yellow taxi", "k": 10, "modality": ["image,text", "text"]}).json()
    assert {h["modality"] for h in res["results"]} == {"image,text", "text"}
    assert len(res["results"]) == 4 and res["results"][0]["id"] == "c-yellow"
    assert res["modality"] == ["image,text", "text"]


def test_text_plus_image_query_and_data_url(client) -> None:
    image = "data:image/png;base64," + b64(png_bytes((230, 220, 30)))
    found = ids(client.post("/search", json={"text": "taxi card", "image": image, "k": 2}))
    assert found[0] == "c-yellow"


def test_search_returns_scores_best_first_and_thumbnails_only_on_request(client) -> None:
    res = client.post("/search", json={"text": "red bus", "k": 7}).json()
    scores = [h["score"] for h in res["results"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 7
    # each text hit's score is the embedder's cosine of the query and that text (embedded as a document)
    toy = ToyEmbedder()
    query = toy.encode_query([Item(text="red bus")])[0]
    for hit in (h for h in res["results"] if h["modality"] == "text"):
        want = float(query @ toy.encode_document([Item(text=TEXTS[hit["id"]], id=hit["id"])])[0])
        assert hit["score"] == pytest.approx(want, abs=1e-5), hit["id"]
    assert all(h["thumbnail"] is None for h in res["results"])
    # the whole request's latency holds its four timed phases, which run one after the other
    assert res["latency_ms"] >= sum(res["timings_ms"].values()) - 1e-6 and set(res["timings_ms"]) == {
        "embed", "search", "rerank", "records"}
    res = client.post("/search", json={"text": "red bus", "k": 7, "thumbnails": True}).json()
    thumbs = {h["id"]: h["thumbnail"] for h in res["results"]}
    assert thumbs["t-bus"] is None and thumbs["i-red"].startswith("data:image/jpeg;base64,")


def test_responses_never_reveal_server_paths(client, toy_index_dir) -> None:
    text = client.post("/search", json={"text": "red", "k": 7, "thumbnails": True}).text
    text += client.get("/items/i-red").text
    assert str(toy_index_dir.parent) not in text and ".png" not in text


def test_embed_json_matches_the_embedder(client) -> None:
    image = png_bytes((20, 200, 40))
    body = {"items": [{"text": "a grey cat", "instruction": "find it"}, {"image": b64(image)}], "role": "query"}
    res = client.post("/embed", json=body).json()
    got = np.array(res["embeddings"], dtype=np.float32)
    want = ToyEmbedder().encode_queries([Item(text="a grey cat", instruction="find it"),
                                         Item(image=Image.open(io.BytesIO(image)))])
    assert res["dim"] == 64 and got.shape == (2, 64)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_candidates_are_embedded_without_their_instruction(client) -> None:
    item = {"text": "a grey cat", "instruction": "find it"}
    as_query = client.post("/embed", json={"items": [item]}).json()["embeddings"][0]
    as_cand = client.post("/embed", json={"items": [item], "role": "candidate"}).json()["embeddings"][0]
    plain = client.post("/embed", json={"items": [{"text": "a grey cat"}]}).json()["embeddings"][0]
    assert as_cand == plain and as_query != plain


def test_embed_multipart_upload_equals_json(client) -> None:
    image = png_bytes((220, 20, 20))
    up = client.post("/embed", files={"image": ("red.png", image, "image/png")},
                     data={"text": "red thing", "role": "candidate"})
    js = client.post("/embed", json={"items": [{"text": "red thing", "image": b64(image)}], "role": "candidate"})
    assert up.status_code == 200, up.text
    np.testing.assert_allclose(up.json()["embeddings"], js.json()["embeddings"], atol=1e-6)


def test_get_item_with_thumbnail(client) -> None:
    res = client.get("/items/i-green").json()
    assert res["id"] == "i-green" and res["modality"] == "image" and res["has_image"] is True
    jpeg = base64.b64decode(res["thumbnail"].split(",", 1)[1])
    thumb = Image.open(io.BytesIO(jpeg))
    assert thumb.format == "JPEG" and max(thumb.size) <= 192
    r, g, b = thumb.convert("RGB").getpixel((5, 5))
    assert g > 150 and r < 80 and b < 80
    raw = client.get("/items/i-green/thumbnail")
    assert raw.headers["content-type"] == "image/jpeg" and raw.content == jpeg
    text = client.get("/items/t-cat").json()
    assert text == {"id": "t-cat", "modality": "text", "text": "a sleeping grey cat on a sofa", "has_image": False,
                    "thumbnail": None}


def test_unknown_item_is_404(client) -> None:
    res = client.get("/items/no-such-did")
    assert res.status_code == 404 and res.json() == {"error": "unknown_item",
                                                     "detail": "no item 'no-such-did' in the index"}
    assert client.get("/items/t-cat/thumbnail").json()["error"] == "no_image"


def test_rerank_not_configured_is_501(client) -> None:
    for path, body in (("/rerank", {"query": {"text": "x"}, "candidates": [{"id": "t-cat"}]}),
                       ("/search", {"text": "x", "rerank": True})):
        res = client.post(path, json=body)
        assert res.status_code == 501 and res.json()["error"] == "rerank_not_configured"


def test_rerank_scores_indexed_and_adhoc_candidates(make_client) -> None:
    scorer = SeaScorer()
    client = make_client(reranker=scorer)
    body = {"query": {"text": "anything"}, "candidates": [{"id": "t-cat"}, {"id": "i-red"}, {"id": "t-sea"},
                                                          {"text": "by the sea", "image": b64(png_bytes((1, 2, 3)))}]}
    res = client.post("/rerank", json=body).json()
    assert res["scores"] == [0.0, 0.0, 2.0, 2.0]
    assert [r["index"] for r in res["ranking"]][:2] == [2, 3] and res["ranking"][0]["id"] == "t-sea"
    query, cands = scorer.seen[-1]
    assert query.text == "anything" and cands[1].id == "i-red"
    assert cands[1].load_image().getpixel((0, 0)) == COLOURS["i-red"]  # indexed image loaded server-side
    assert client.post("/rerank", json={"query": {"text": "x"}, "candidates": [{"id": "zzz"}]}).status_code == 404


def test_search_with_rerank_fuses_scores(make_client) -> None:
    client = make_client(reranker=SeaScorer())
    plain = client.post("/search", json={"text": "sleeping cat", "k": 3}).json()["results"]
    fused = client.post("/search", json={"text": "sleeping cat", "k": 3, "rerank": True}).json()
    assert plain[0]["id"] == "t-cat" and fused["reranked"] is True
    top = fused["results"][0]
    assert top["id"] == "t-sea" and top["rerank_score"] == 2.0
    assert top["score"] == pytest.approx(top["retrieval_score"] + 2.0)
    assert len(fused["results"]) == 3


def test_openapi_documents_every_endpoint(client) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/embed", "/search", "/rerank", "/items/{did}", "/health"} <= set(spec["paths"])
    content = spec["paths"]["/embed"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} == set(content)
    assert "EmbedRequest" in spec["components"]["schemas"] and "ItemIn" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_page_and_assets_are_served_locally(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="search-form"' in page.text
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        res = client.get(asset)
        assert res.status_code == 200 and kind in res.headers["content-type"]
        assert "http://" not in res.text and "https://" not in res.text and "//cdn" not in res.text
    assert "http" not in page.text.replace('http-equiv', '')
