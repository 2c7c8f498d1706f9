"""examples/judge_attribute_probe.py's questions: a minimal pair names the same attributes of the image and
differs only in the asked one, so a judge can tell Yes from No only by reading that attribute."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from judge_attribute_probe import Questions, description  # noqa: E402

from umr.data.world.attributes import VALUES  # noqa: E402

FILES = [Path("images/d/val/star-red-large-dotted-left-beige_v0.png"),
         Path("images/d/val/circle-blue-small-solid-top-grey_v1.png")]


def vocabulary(attribute: str) -> set[str]:
    return {w for v in VALUES[attribute] for w in description({attribute: v}).split()}


def test_description_names_only_the_given_attributes_in_caption_order() -> None:
    assert description({"colour": "red", "position": "left"}) == "a red shape on the left"
    assert description({"shape": "star", "size": "large", "pattern": "dotted", "colour": "red", "position": "left",
                        "background": "beige"}) == "a large polka-dot red star on the left on a beige background"


@pytest.mark.parametrize("attribute", sorted(VALUES))
def test_a_minimal_pair_differs_only_in_the_asked_attribute(attribute: str) -> None:
    questions = Questions(FILES, image_first=None, named=(3, 3))
    rng, orders = random.Random(0), set()
    for _ in range(20):
        (a_first, a_second), (b_first, b_second) = questions.ask(0, attribute, rng)
        true, wrong = (a_first.text or a_second.text), (b_first.text or b_second.text)
        assert (a_first.image is None) == (b_first.image is None)  # the pair keeps one order
        orders.add(a_first.image is None)
        assert true != wrong and len(true.split(" on a ")[0].split()) >= 2
        changed = set(true.split()) ^ set(wrong.split())
        own = {"star", "red", "large", "polka-dot", "left", "beige"}  # the image's words
        assert changed & own and changed - own  # the true value left, a wrong one came in
        assert changed <= vocabulary(attribute)  # and no other attribute's words changed
    assert orders == {True, False}  # image_first=None draws both orders


def test_single_attribute_questions_keep_the_bare_word() -> None:
    (first, second), _ = Questions(FILES, image_first=False).ask(0, "pattern", random.Random(0))
    assert first.text == "polka-dot" and second.image == str(FILES[0])
