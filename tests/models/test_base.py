"""The Embedder's role-explicit encode API: encode_query / encode_document, their old names, encode_role."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from mllm_support import draw

from umr import Item, UmrError
from umr.models.baselines import RandomEmbedder, _unit


@pytest.mark.parametrize(("recipe", "item"), [("mm-embed", Item(text="a red circle")),
                                              ("u-marvel", Item(image=draw("red")))])
def test_a_query_without_instruction_keeps_its_vector_and_differs_from_a_document(recipe: str, item: Item,
                                                                                 embedders) -> None:
    emb = embedders[recipe]
    query = emb.encode_query([item])
    # before roles, encode_queries marked such a query with the instruction "": the vector must not move
    np.testing.assert_array_equal(query, emb.encode([item.with_instruction("")]))
    assert np.abs(query - emb.encode_document([item])).max() > 1e-3
    np.testing.assert_array_equal(query, emb.encode_role("query", [item]))
    np.testing.assert_array_equal(emb.encode_corpus([item]), emb.encode_role("document", [item]))


def test_an_override_under_either_name_is_seen_under_both() -> None:
    class Old(RandomEmbedder):  # written against the first names
        def encode_queries(self, items: Any, instruction: str | None = None, **kw: Any) -> np.ndarray:
            return -super().encode_queries(items, instruction=instruction, **kw)

    class New(RandomEmbedder):
        def encode_document(self, items: Any, **kw: Any) -> np.ndarray:
            return 2 * super().encode_document(items, **kw)

    plain = RandomEmbedder(dim=8)
    items = [Item(text="a", id="1")]
    for via in (Old(dim=8).encode_query, Old(dim=8).encode_queries, lambda x: Old(dim=8).encode_role("query", x)):
        np.testing.assert_array_equal(via(items), -plain.encode_query(items))
    for via in (New(dim=8).encode_document, New(dim=8).encode_corpus, lambda x: New(dim=8).encode_role("document", x)):
        np.testing.assert_array_equal(via(items), 2 * plain.encode_document(items))


def test_random_baseline_seeds_a_query_apart_from_a_document_of_the_same_id() -> None:
    emb = RandomEmbedder(dim=16)
    item = Item(text="same", id="9:1")  # M-BEIR: "9:1" can be a qid and a did
    # the seeds the baseline has always used, so its rows of the demo's table stay as they are
    np.testing.assert_allclose(emb.encode_query([item])[0], _unit("0|query|9:1|same|None", 16), atol=1e-6)
    np.testing.assert_allclose(emb.encode_document([item])[0], _unit("0|9:1|same|None", 16), atol=1e-6)


def test_an_unknown_role_is_refused_by_name() -> None:
    with pytest.raises(UmrError, match="unknown role 'candidate'; use one of query, document"):
        RandomEmbedder(dim=4).encode_role("candidate", ["x"])  # type: ignore[arg-type]
