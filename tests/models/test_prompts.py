"""Prompt rendering by role: a query is rendered as one because its role says so, instruction or not."""

from __future__ import annotations

import pytest

from umr import Item
from umr.models.prompts import render
from umr.models.recipe import get_recipe

IMG = "<image>"


def rendered(recipe: str, item: Item) -> str:
    return render(get_recipe(recipe), item, [IMG] if item.image is not None else []).text


def test_mm_embed_marks_every_query_and_no_document() -> None:
    bare = rendered("mm-embed", Item(text="a red bus", role="query"))
    assert bare == "Query: a red bus"
    instructed = rendered("mm-embed", Item(text="a red bus", instruction="Find the photo", role="query"))
    assert instructed == "Instruct: Find the photo\nQuery: a red bus"
    assert rendered("mm-embed", Item(text="a red bus", image="x.png", role="document")) == f"{IMG}a red bus"


@pytest.mark.parametrize(("recipe", "document_summary"), [("u-marvel", "image and sentence"), ("lamra", "image")])
def test_lamra_summary_of_an_image_only_item_follows_its_role(recipe: str, document_summary: str) -> None:
    query = rendered(recipe, Item(image="x.png", role="query"))
    document = rendered(recipe, Item(image="x.png", role="document"))
    assert "Summarize above image in one word:" in query
    assert f"Summarize above {document_summary} in one word:" in document


@pytest.mark.parametrize(("item", "is_query"), [
    (Item(text="t"), False),
    (Item(text="t", instruction="Find it"), True),
    (Item(text="t", instruction=""), True),  # what encode_queries sent before roles: still read the same way
    (Item(text="t", role="query"), True),
    (Item(text="t", instruction="Find it", role="document"), False),
])
def test_an_item_without_a_role_is_a_query_when_it_carries_an_instruction(item: Item, is_query: bool) -> None:
    assert item.is_query is is_query


def test_a_bad_role_names_the_item() -> None:
    from umr import ItemError

    with pytest.raises(ItemError, match=r"item 'q1': role must be one of query, document, got 'candidate'"):
        Item(text="t", id="q1", role="candidate")  # type: ignore[arg-type]
