"""UmrEmbeddings in LangChain's own InMemoryVectorStore: texts and images, queries vs documents."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest
from integrations_support import INSTRUCTION, TEXTS, data_url

pytest.importorskip("langchain_core", reason="the langchain extra: pip install 'umr[langchain]'")
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

from umr.integrations.langchain import UmrEmbeddings  # noqa: E402
from umr.items import Item  # noqa: E402


def test_text_store_retrieves_the_matching_text_first(toy) -> None:
    store = InMemoryVectorStore(UmrEmbeddings(toy, query_instruction=INSTRUCTION))
    store.add_texts(list(TEXTS.values()), ids=list(TEXTS))
    for query, did in (("a sleeping cat", "t-cat"), ("red bus", "t-bus"), ("the calm sea", "t-sea")):
        assert store.similarity_search(query, k=1)[0].id == did


def test_image_store_searched_with_an_image_query(toy, colour_files) -> None:
    """documents='image': the store's strings are image paths; the query is a data: URL of a bluish image."""
    embeddings = UmrEmbeddings(toy, documents="image")
    store = InMemoryVectorStore(embeddings)
    store.add_texts(list(colour_files.values()), ids=list(colour_files))
    hits = store.similarity_search_by_vector(embeddings.embed_image_query(data_url((40, 60, 200))), k=3)
    assert [h.id for h in hits][0] == "i-blue"
    np.testing.assert_allclose(embeddings.embed_image([colour_files["i-red"]])[0],
                               toy.encode_corpus([Item(image=colour_files["i-red"])])[0], atol=1e-6)


def test_queries_get_the_instruction_documents_do_not(toy) -> None:
    embeddings = UmrEmbeddings(toy, query_instruction=INSTRUCTION)
    query = embeddings.embed_query("a sleeping cat")
    np.testing.assert_allclose(query, toy.encode_queries(["a sleeping cat"], instruction=INSTRUCTION)[0], atol=1e-6)
    doc = embeddings.embed_documents(["a sleeping cat"])[0]
    np.testing.assert_allclose(doc, toy.encode_corpus(["a sleeping cat"])[0], atol=1e-6)
    assert not np.allclose(query, doc)


def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_core.embeddings", None)
    monkeypatch.delitem(sys.modules, "umr.integrations.langchain")
    with pytest.raises(ImportError, match=r"pip install 'umr\[langchain\]'"):
        importlib.import_module("umr.integrations.langchain")


def test_import_umr_needs_no_framework() -> None:
    """The adapters import their framework; `import umr` and `import umr.integrations` import none."""
    code = ("import sys, umr, umr.integrations; "
            "print(sorted(m for m in ('langchain_core', 'llama_index') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
