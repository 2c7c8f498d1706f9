"""The real `openai` client and LangChain's `OpenAIEmbeddings` against a running `umr serve` (tiny GME on loopback):
they get the vectors `umr embed` writes for the same items (documents), and /search's (queries, with the role and
instruction extra fields)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image
from serve_support import running_server

openai = pytest.importorskip("openai", reason="the openai client is in the dev extra")
langchain_openai = pytest.importorskip("langchain_openai", reason="langchain-openai is in the dev extra")

from umr.cli import build_parser, main  # noqa: E402
from umr.cli.cmd_serve import build_app  # noqa: E402
from umr.index.embed_job import EmbeddingStore  # noqa: E402

TOKEN = "t0k"
INSTRUCTION = "Retrieve an image that matches the given caption."
TEXTS = {"d-bus": "a red double decker bus", "d-cat": "a sleeping grey cat on a sofa"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`umr index build` + `umr embed` of the same corpus with tiny:gme, and `umr serve` on the index."""
    root = tmp_path_factory.mktemp("openai-serve")
    Image.new("RGB", (48, 40), (220, 20, 20)).save(root / "red.png")
    rows = [{"id": did, "text": text} for did, text in TEXTS.items()]
    rows += [{"id": "d-red", "image": "red.png"}, {"id": "d-card", "text": "a red card", "image": "red.png"}]
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["index", "build", "--model", "tiny:gme", "--corpus", str(corpus), "--out", str(root / "job"),
                 "--no-progress"]) == 0
    assert main(["embed", "--model", "tiny:gme", "--input", str(corpus), "--out", str(root / "emb")]) == 0
    store = EmbeddingStore(root / "emb")
    expected = dict(zip([r["id"] for r in store.records()], np.asarray(store.embeddings()), strict=True))
    app = build_app(build_parser().parse_args(["serve", "--index", str(root / "job"), "--token", TOKEN]))
    data_url = "data:image/png;base64," + base64.b64encode((root / "red.png").read_bytes()).decode()
    with running_server(app) as url:
        yield {"url": f"{url}/v1", "expected": expected, "embedder": app.state.embedder, "image": data_url}


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def client(served: dict[str, Any]) -> Any:
    return openai.OpenAI(base_url=served["url"], api_key=TOKEN, max_retries=0)


@pytest.mark.parametrize("encoding_format", ["float", "base64", None])
def test_openai_client_gets_umr_embed_vectors(served: dict[str, Any], encoding_format: str | None) -> None:
    """None: the client's own default (it asks for base64 and decodes it); asked for base64, it hands the string
    back as it came (little-endian float32)."""
    extra = {} if encoding_format is None else {"encoding_format": encoding_format}
    res = client(served).embeddings.create(model="tiny:gme", input=list(TEXTS.values()), **extra)
    assert [d.index for d in res.data] == [0, 1] and res.model == "tiny:gme"
    for did, row in zip(TEXTS, res.data, strict=True):
        vec = row.embedding
        if isinstance(vec, str):
            vec = np.frombuffer(base64.b64decode(vec), "<f4")
        assert len(vec) == served["embedder"].dim == 128 and cosine(vec, served["expected"][did]) > 0.9999
    # usage comes from the model's tokenizer: more than one token per word would be a whitespace count
    assert res.usage.prompt_tokens == res.usage.total_tokens > sum(len(t.split()) for t in TEXTS.values())


def test_openai_client_images_as_content_parts(served: dict[str, Any]) -> None:
    """vLLM's multimodal forms: content-part lists as input elements, and one item as chat messages."""
    image = {"type": "image_url", "image_url": {"url": served["image"]}}
    res = client(served).embeddings.create(model="tiny:gme", input=[[image], [{"type": "text", "text": "a red card"},
                                                                                image]])
    assert cosine(res.data[0].embedding, served["expected"]["d-red"]) > 0.9999
    assert cosine(res.data[1].embedding, served["expected"]["d-card"]) > 0.9999
    body = {"model": "tiny:gme", "encoding_format": "float",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a red card"}, image]}]}
    res = client(served).post("/embeddings", body=body, cast_to=openai.types.CreateEmbeddingResponse)
    assert cosine(res.data[0].embedding, served["expected"]["d-card"]) > 0.9999


def test_query_role_and_instruction_are_extra_fields(served: dict[str, Any]) -> None:
    query = served["embedder"].encode_queries(["a red bus"], instruction=INSTRUCTION)[0]
    res = client(served).embeddings.create(model="tiny:gme", input="a red bus",
                                           extra_body={"role": "query", "instruction": INSTRUCTION})
    assert cosine(res.data[0].embedding, query) > 0.9999
    # the same text as a document is another vector: the role reached the model
    plain = client(served).embeddings.create(model="tiny:gme", input="a red bus").data[0].embedding
    assert cosine(plain, query) < 0.999


def test_openai_client_errors_are_its_exceptions(served: dict[str, Any]) -> None:
    with pytest.raises(openai.AuthenticationError, match="wrong bearer token"):
        openai.OpenAI(base_url=served["url"], api_key="nope", max_retries=0).embeddings.create(
            model="tiny:gme", input="x")
    with pytest.raises(openai.NotFoundError, match="embeds with 'tiny:gme', not 'text-embedding-3-small'"):
        client(served).embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.UnprocessableEntityError, match="makes 128-d vectors") as err:
        client(served).embeddings.create(model="tiny:gme", input="x", dimensions=64)
    assert err.value.code == "unsupported_dimensions"
    assert [m.id for m in client(served).models.list()] == ["tiny:gme"]


def test_langchain_openai_embeddings(served: dict[str, Any]) -> None:
    common = {"model": "tiny:gme", "base_url": served["url"], "api_key": TOKEN, "check_embedding_ctx_length": False,
              "max_retries": 0}
    docs = langchain_openai.OpenAIEmbeddings(**common).embed_documents(list(TEXTS.values()))
    for did, vec in zip(TEXTS, docs, strict=True):
        assert cosine(vec, served["expected"][did]) > 0.9999
    queries = langchain_openai.OpenAIEmbeddings(
        **common, model_kwargs={"extra_body": {"role": "query", "instruction": INSTRUCTION}})
    expected = served["embedder"].encode_queries(["a red bus"], instruction=INSTRUCTION)[0]
    assert cosine(queries.embed_query("a red bus"), expected) > 0.9999
