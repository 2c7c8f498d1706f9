"""P(Yes) of `Reranker` in umr's own prompt style ("umr") equals softmax over the (Yes, No) logits of a plain
transformers forward, computed here independently: the prompt string is written out by hand, images expanded
from the processor's own output, and the stock model's full LM-head logits at the last prompt position are read.
The official styles are checked against their reference code in test_rerank_parity.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rerank_support import draw
from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

from umr import Item
from umr.models.tiny import build_tiny, build_tiny_llava_next
from umr.rerank.prompted import Reranker

QUERY = Item(text="a red circle", instruction="Find the matching image")
CANDS = [Item(image=draw("red")), Item(text="a blue square on the left"),
         Item(text="make it", image=draw("blue", "sq"))]
BODY = ("Judge whether the candidate is relevant to the query.\nTask: Find the matching image\n"
        "Query: a red circle\nCandidate: {vision}{text}\nIs the candidate relevant to the query? Answer Yes or No.")


@pytest.fixture(scope="module", params=["gme", "llava-next"])
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("rr") / request.param
    if request.param == "llava-next":  # a llava-hf LLaVA-NeXT with its LM head (MM-Embed's checkpoint has none)
        return request.param, str(build_tiny_llava_next(folder))
    return request.param, str(build_tiny(request.param, folder))


def reference_p_yes(recipe: str, path: str, cand: Item) -> float:
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    proc = AutoImageProcessor.from_pretrained(path, use_fast=False)
    yes, no = tok("Yes", add_special_tokens=False)["input_ids"][0], tok("No", add_special_tokens=False)["input_ids"][0]
    with torch.no_grad():
        if recipe == "gme":
            kwargs, vision = {}, ""
            if cand.image is not None:
                px = proc(images=[cand.image], return_tensors="pt")
                kwargs = {"pixel_values": px["pixel_values"], "image_grid_thw": px["image_grid_thw"]}
                n = int(px["image_grid_thw"].prod()) // proc.merge_size ** 2
                vision = f"<|vision_start|>{'<|image_pad|>' * n}<|vision_end|>"
            prompt = (f"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                      f"{BODY.format(vision=vision, text=cand.text or '')}<|im_end|>\n<|im_start|>assistant\n")
            ids = tok(prompt, return_tensors="pt")["input_ids"]
            logits = model(input_ids=ids, **kwargs).logits[0, -1]
        else:  # LLaVA-NeXT, global tile only: features placed into the <image> slots by hand
            cfg = model.config
            n = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
            vision = "<image>" * n + "\n" if cand.image is not None else ""
            ids = tok(f"[INST] {BODY.format(vision=vision, text=cand.text or '')} [/INST]", return_tensors="pt")[
                "input_ids"]
            embeds = model.get_input_embeddings()(ids)
            if cand.image is not None:
                tile = proc(images=[cand.image], return_tensors="pt")["pixel_values"][:, 0]
                states = model.model.vision_tower(tile, output_hidden_states=True).hidden_states[
                    cfg.vision_feature_layer]
                embeds[0, ids[0] == cfg.image_token_index] = model.model.multi_modal_projector(states[:, 1:])[0]
            logits = model(inputs_embeds=embeds).logits[0, -1]
    two = logits[[yes, no]].double()
    return float(torch.exp(two[0]) / torch.exp(two).sum())


def test_p_yes_equals_two_logit_softmax(tiny: tuple[str, str]) -> None:
    recipe, path = tiny
    rr = Reranker(path, device="cpu", dtype="fp32", batch_size=3, style="umr")  # one padded batch, 3 lengths
    got = rr.score(QUERY, CANDS)
    want = np.array([reference_p_yes(recipe, path, c) for c in CANDS])
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert got.dtype == np.float32 and np.all((got > 0) & (got < 1))
    # batching does not change a score
    np.testing.assert_allclose([rr.score(QUERY, [c])[0] for c in CANDS], got, atol=2e-5)


def test_same_first_token_is_rejected(tiny: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="same token"):
        Reranker(tiny[1], device="cpu", yes="Yes", no="Yesterday")
