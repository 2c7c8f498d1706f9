"""examples/judge_attribute_probe.py's questions: a minimal pair names the same attributes of the image and
differs only in the asked one, so a judge can tell Yes from No only by reading that attribute."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import torch

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


def test_the_summed_caption_loss_is_the_texts_negative_log_likelihood(tmp_path: Path) -> None:
    """likelihood_accuracy compares whole descriptions by this sum; it must be the stock model's -log P(text tokens
    | everything before), image and padding positions left out, row by row in a padded batch."""
    from judge_plateau_probe import next_token_loss
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from umr.items import Item
    from umr.models.tiny import build_tiny
    from umr.rerank.prompted import Reranker

    path = build_tiny("gme", tmp_path / "gme")
    rr = Reranker(str(path), device="cpu", dtype="fp32", batch_size=2)
    image = Image.new("RGB", (56, 56), (200, 30, 30))
    pairs = [(Item(image=image), Item(text="a large red star on the left")), (Item(image=image), Item(text="a dot"))]
    batch = rr.prepare(pairs)
    with torch.no_grad():
        hidden = rr.backbone.hidden_states(batch)
        ours = [float(next_token_loss(rr, batch, hidden, torch.tensor([r]), "sum")) for r in (0, 1)]
        stock = AutoModelForImageTextToText.from_pretrained(path).eval()
        for row in (0, 1):
            n = int(batch["attention_mask"][row].sum())
            ids = batch["input_ids"][row:row + 1, :n]
            logits = stock(input_ids=ids, pixel_values=batch["pixel_values"].chunk(2)[row],
                           image_grid_thw=batch["image_grid_thw"][row:row + 1]).logits[0, :-1].log_softmax(-1)
            target = ids[0, 1:]
            keep = target != stock.config.image_token_id
            reference = -float(logits[keep].gather(-1, target[keep, None]).sum())
            assert ours[row] == pytest.approx(reference, rel=1e-4)
    assert ours[0] > ours[1]  # the longer text costs more: a sum, not a mean
