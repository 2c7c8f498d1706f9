"""The caption style's score, log P(text | image side) − log P(text), against a transcription on the stock model:
each pair alone, its parts tokenised on their own, the image through the stock processor, weights drawn at std 0.3
(at 0.02 attention is near uniform and would hide a wrong position or a shifted target)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from rerank_support import draw
from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

from umr import Item
from umr.models.tiny import build_tiny
from umr.rerank.likelihood import caption_of
from umr.rerank.prompted import Reranker


@pytest.fixture(scope="module")
def sharp(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = build_tiny("gme", tmp_path_factory.mktemp("caption") / "gme")
    model = AutoModelForImageTextToText.from_pretrained(folder)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    model.save_pretrained(folder)
    return str(folder)


def reference(path: str, condition: Item | None, text: str) -> float:
    """log P(text "\\n" | [vision][condition text] "\\n"), summed over the text's and the newline's tokens."""
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    proc = AutoImageProcessor.from_pretrained(path, use_fast=False)

    def ids(s: str) -> list[int]:
        return tok(s, add_special_tokens=False)["input_ids"]

    kwargs, prefix = {}, []
    if condition is not None:
        vision = ""
        if condition.image is not None:
            px = proc(images=[condition.image], return_tensors="pt")
            kwargs = {"pixel_values": px["pixel_values"], "image_grid_thw": px["image_grid_thw"]}
            n = int(px["image_grid_thw"].prod()) // proc.merge_size ** 2
            vision = f"<|vision_start|>{'<|image_pad|>' * n}<|vision_end|>"
        prefix = ids(vision + (condition.text or ""))
    target = ids(text) + ids("\n")
    full = torch.tensor([prefix + ids("\n") + target])
    with torch.no_grad():
        logp = model(input_ids=full, **kwargs).logits[0].double().log_softmax(-1)
    start = full.shape[1] - len(target)
    return float(sum(logp[t - 1, full[0, t]] for t in range(start, full.shape[1])))


def test_scores_equal_the_stock_models_pmi_in_a_padded_mixed_batch(sharp: str) -> None:
    red, blue = draw("red", "circle"), draw("blue", "sq")
    pairs = [
        (Item(text="a red circle"), Item(image=red)),                                  # text → image
        (Item(image=blue), Item(text="a small blue square on the left of a picture")),  # image → text
        (Item(text="a blue square", instruction="Find it"), Item(image=red)),          # instructed, as M-BEIR's
        (Item(image=red), Item(text="a circle")),
        (Item(image=red), Item(image=blue)),                                           # no caption: 0
        (Item(text="a red circle"), Item(text="a blue square")),                       # no image: 0
        (Item(text="a red circle"), Item(image=red, text="Ada")),                      # an entity card: 0
        (Item(image=red, text="what is it?"), Item(text="a circle")),                  # a question: 0
    ]
    rr = Reranker(sharp, device="cpu", dtype="fp32", batch_size=3, style="caption")  # pairs split over batches
    got = rr.score_pairs(pairs)
    want = []
    for q, c in pairs:
        cap = caption_of(q, c)
        want.append(0.0 if cap is None else reference(sharp, cap[0], cap[1]) - reference(sharp, None, cap[1]))
    np.testing.assert_allclose(got, np.array(want), atol=2e-4)  # measured 3e-5 nats (float32 sums)
    assert np.abs(got[:4]).min() > 0.01  # the drawn weights make every score count
    assert not got[4:].any()


def test_the_caption_is_the_side_without_an_image() -> None:
    img = Path("x.png")
    assert caption_of(Item(text="q"), Item(image=img)) == (Item(image=img), "q")
    assert caption_of(Item(image=img), Item(text="c")) == (Item(image=img), "c")
    assert caption_of(Item(image=img, text="q"), Item(text="c")) is None
    assert caption_of(Item(text="q"), Item(image=img, text="c")) is None
    assert caption_of(Item(image=img), Item(image=img, text="c")) is None
    assert caption_of(Item(text="q"), Item(text="c")) is None


def test_a_saved_caption_judge_loads_with_its_scoring(sharp: str, tmp_path: Path) -> None:
    saved = Reranker(sharp, device="cpu", style="caption").save_pretrained(tmp_path / "judge")
    rr = Reranker(saved, device="cpu")
    assert rr.style.scoring == "caption-pmi"
    assert Reranker(sharp, device="cpu").style.scoring == "yes-no"


def test_a_llava_next_judge_is_refused_the_caption_style(tmp_path: Path) -> None:
    from umr.errors import UmrError
    from umr.models.tiny import build_tiny_llava_next

    with pytest.raises(UmrError, match="'caption' is qwen2-vl only"):
        Reranker(build_tiny_llava_next(tmp_path / "llava"), device="cpu", style="caption")


def test_a_caption_holding_an_image_token_is_refused_by_name(sharp: str) -> None:
    from umr.items import ItemError

    rr = Reranker(sharp, device="cpu", style="caption")
    with pytest.raises(ItemError, match="image_pad"):
        rr.score(Item(text="a red <|image_pad|> circle"), [Item(image=draw("red", "circle"))])
