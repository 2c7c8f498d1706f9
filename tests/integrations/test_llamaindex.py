"""UmrMultiModalEmbedding in LlamaIndex's own in-memory VectorStoreIndex and MultiModalVectorStoreIndex."""

from __future__ import annotations

import io

import numpy as np
import pytest
from integrations_support import INSTRUCTION, TEXTS, png_bytes

pytest.importorskip("llama_index.core", reason="the llamaindex extra: pip install 'umr[llamaindex]'")
from llama_index.core import VectorStoreIndex  # noqa: E402
from llama_index.core.indices import MultiModalVectorStoreIndex  # noqa: E402
from llama_index.core.schema import ImageNode, TextNode  # noqa: E402

from umr.integrations.llamaindex import UmrMultiModalEmbedding  # noqa: E402


def test_vector_store_index_retrieves_the_matching_text_first(toy) -> None:
    model = UmrMultiModalEmbedding(toy, query_instruction=INSTRUCTION)
    index = VectorStoreIndex([TextNode(text=t, id_=did) for did, t in TEXTS.items()], embed_model=model)
    retriever = index.as_retriever(similarity_top_k=1)
    for query, did in (("a sleeping cat", "t-cat"), ("red bus", "t-bus"), ("the calm sea", "t-sea")):
        assert retriever.retrieve(query)[0].node.node_id == did


def test_multimodal_index_retrieves_the_matching_image_first(toy, colour_files, tmp_path) -> None:
    model = UmrMultiModalEmbedding(toy)
    # metadata as SimpleDirectoryReader sets it: LlamaIndex skips nodes whose content (text + metadata) is empty
    nodes = [ImageNode(image_path=path, id_=did, metadata={"file_path": path}) for did, path in colour_files.items()]
    nodes += [TextNode(text=t, id_=did) for did, t in TEXTS.items()]
    index = MultiModalVectorStoreIndex(nodes, embed_model=model, image_embed_model=model)
    query = tmp_path / "greenish.png"
    query.write_bytes(png_bytes((40, 180, 60)))
    hits = index.as_retriever(image_similarity_top_k=3).image_to_image_retrieve(str(query))
    assert hits[0].node.node_id == "i-green"
    assert index.as_retriever(similarity_top_k=1).text_retrieve("a grey cat")[0].node.node_id == "t-cat"


def test_roles_and_image_inputs(toy, colour_files) -> None:
    model = UmrMultiModalEmbedding(toy, query_instruction=INSTRUCTION)
    query, text = model.get_query_embedding("a sleeping cat"), model.get_text_embedding("a sleeping cat")
    np.testing.assert_allclose(query, toy.encode_queries(["a sleeping cat"], instruction=INSTRUCTION)[0], atol=1e-6)
    np.testing.assert_allclose(text, toy.encode_corpus(["a sleeping cat"])[0], atol=1e-6)
    assert not np.allclose(query, text)
    # a stream (what ImageNode.resolve_image hands over) and the file give the same vector
    with open(colour_files["i-red"], "rb") as f:
        stream = io.BytesIO(f.read())
    np.testing.assert_allclose(model.get_image_embedding(stream), model.get_image_embedding(colour_files["i-red"]),
                               atol=1e-6)
