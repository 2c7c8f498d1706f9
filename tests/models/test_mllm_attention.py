"""Attention direction, the pooling mask, prompts and loading errors of the MLLM recipes."""

from __future__ import annotations

import json

import pytest
import torch
from mllm_support import draw

from umr import Item, ItemError, load_embedder
from umr.models.recipe import get_recipe, list_recipes

BIDIRECTIONAL = {"u-marvel": True, "mm-embed": True, "gme": False, "lamra": False}


@pytest.mark.parametrize("recipe", sorted(BIDIRECTIONAL))
def test_attention_direction(recipe: str, embedders) -> None:
    """Change only the last word: bidirectional models change earlier positions too, causal ones do not."""
    emb = embedders[recipe]
    a, b = Item(text="a red circle on the left"), Item(text="a red circle on the right")
    with torch.no_grad():
        batch = emb.prepare([a, b])
        hidden = emb.backbone.hidden_states(batch)
    ids = batch["input_ids"]
    first_diff = int((ids[0] != ids[1]).nonzero()[0])
    assert first_diff > 3
    earlier_gap = (hidden[0, :first_diff] - hidden[1, :first_diff]).abs().max().item()
    if BIDIRECTIONAL[recipe]:
        assert earlier_gap > 1e-4
    else:
        assert earlier_gap < 1e-5


def test_u_marvel_pool_mask_excludes_instruction_tokens(embedders) -> None:
    emb = embedders["u-marvel"]
    tok = emb.tokenizer
    batch = emb.prepare([Item(text="a blue star", instruction="Find the matching picture"),
                         Item(text="a blue star")])
    ids, pool, attn = batch["input_ids"][0].tolist(), batch["pool_mask"][0], batch["attention_mask"][0]
    start, end = ids.index(tok.convert_tokens_to_ids("<instruction_start>")), ids.index(
        tok.convert_tokens_to_ids("<instruction_end>"))
    assert pool[start:end + 1].sum() == 0  # instruction and its bounds are out
    assert pool[:start].all() and pool[end + 1:int(attn.sum())].all()  # everything else real is in
    assert torch.equal(batch["pool_mask"][1], batch["attention_mask"][1])  # no instruction: pool = real tokens
    # ...so the instruction changes the embedding only through attention, and the text words still count.
    text_ids = tok(" a blue star", add_special_tokens=False)["input_ids"]
    assert pool[end + 1:end + 1 + len(text_ids)].all()


def test_gme_candidate_gets_default_system_prompt(embedders) -> None:
    emb = embedders["gme"]
    text = emb.tokenizer.decode(emb.prepare([Item(text="x")])["input_ids"][0])
    assert "system\nYou are a helpful assistant." in text and text.endswith("<|endoftext|>")
    query = emb.tokenizer.decode(emb.prepare([Item(text="x", instruction="Find it")])["input_ids"][0])
    assert "system\nFind it<|im_end|>" in query


def test_encode_queries_and_corpus(embedders) -> None:
    emb = embedders["gme"]
    plain = emb.encode([Item(text="a red circle")])
    as_query = emb.encode_queries([Item(text="a red circle")], instruction="Retrieve the image")
    as_corpus = emb.encode_corpus([Item(text="a red circle", instruction="ignored for candidates")])
    assert (plain == as_corpus).all()
    assert abs(plain - as_query).max() > 1e-3


def test_bad_image_names_the_item(embedders, tmp_path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ItemError, match="d42"):
        embedders["gme"].encode([Item(text="ok"), Item(image=str(bad), id="d42")])


def test_video_frames_become_images(embedders) -> None:
    emb = embedders["gme"]
    frames = [draw(c) for c in ("red", "green", "blue")]
    batch = emb.prepare([Item(video=frames, text="a clip")])
    n_vision = int((batch["input_ids"] == emb.tokenizer.convert_tokens_to_ids("<|vision_start|>")).sum())
    assert n_vision == 3
    assert emb.encode([Item(video=frames)]).shape == (1, emb.dim)


def test_recipes_listed_and_validated(tmp_path) -> None:
    assert {"gme", "u-marvel", "lamra", "mm-embed", "clip-sf", "text"} <= set(list_recipes())
    assert get_recipe("u-marvel").attention == "bidirectional"
    assert get_recipe("gme", {"max_image_tokens": 512}).max_image_tokens == 512
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="unknown settings"):
        get_recipe("gme", {"max_image_tokenz": 1})


def test_load_errors_are_clear(tmp_path, tiny_dirs) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert-ish"}))
    with pytest.raises(ValueError, match="cannot tell which recipe"):
        load_embedder(str(tmp_path))
    with pytest.raises(ValueError, match="needs a LLaVA-NeXT model"):
        load_embedder(tiny_dirs["gme"], recipe="mm-embed")


def test_save_and_reload_round_trip(embedders, tmp_path) -> None:
    emb = embedders["u-marvel"]
    items = [Item(text="a green ring", instruction="Find it"), Item(image=draw("green"))]
    out = emb.save_pretrained(tmp_path / "saved")
    again = load_embedder(str(out))
    assert again.recipe.name == "u-marvel" and again.recipe.attention == "bidirectional"
    assert abs(emb.encode(items) - again.encode(items)).max() < 1e-5


@pytest.mark.parametrize("recipe", ["gme", "mm-embed"])
def test_bf16_runs_close_to_fp32(recipe: str, tiny_dirs, embedders) -> None:
    items = [Item(text="a red circle", instruction="Find it"), Item(image=draw("red"))]
    half = load_embedder(tiny_dirs[recipe], dtype="bf16")
    assert half.dtype == torch.bfloat16
    low, full = half.encode(items), embedders[recipe].encode(items)
    assert low.dtype == full.dtype
    assert (low * full).sum(1).min() > 0.98  # cosine between the bf16 and fp32 embeddings of each item
