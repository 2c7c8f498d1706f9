"""The offline tiny CLIP: an ordinary HF folder, deterministic from its seed, loadable with no network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from umr.items import Item
from umr.models.tiny_clip import build_tiny_clip, clip_corpus


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip-build") / "clip", seed=0)


def test_folder_layout_and_recipe(built: Path) -> None:
    names = {p.name for p in built.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "preprocessor_config.json", "umr_recipe.json"} <= names
    assert json.loads((built / "umr_recipe.json").read_text())["recipe"] == "clip-sf"


def test_config_is_tiny(built: Path) -> None:
    from transformers import CLIPConfig

    cfg = CLIPConfig.from_pretrained(built)
    assert (cfg.text_config.hidden_size, cfg.text_config.num_hidden_layers) == (64, 2)
    assert (cfg.vision_config.hidden_size, cfg.vision_config.num_hidden_layers) == (64, 2)
    assert cfg.vision_config.image_size <= 112 and cfg.vision_config.patch_size in (14, 16)
    assert cfg.projection_dim == 64
    # CLIP pools the text at the first eos; id 2 would select transformers' legacy argmax rule instead
    assert cfg.text_config.eos_token_id != 2


def test_same_seed_same_folder_other_seed_other_weights(built: Path, tmp_path: Path) -> None:
    again = build_tiny_clip(tmp_path / "again", seed=0)
    other = build_tiny_clip(tmp_path / "other", seed=1)
    a, b, c = (load_file(str(p / "model.safetensors")) for p in (built, again, other))
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    assert (built / "tokenizer.json").read_text() == (again / "tokenizer.json").read_text()


def test_tokenizer_reloads_offline_and_loses_no_bytes(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built)
    cfg = AutoConfig.from_pretrained(built).text_config
    assert tok.is_fast
    ids = tok("A Red circle")["input_ids"]
    assert ids[0] == tok.bos_token_id == cfg.bos_token_id
    assert ids[-1] == tok.eos_token_id == cfg.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "a red circle"  # CLIP lower-cases
    # Words seen in training merge into whole tokens; unseen scripts still encode byte by byte.
    assert len(tok("circle")["input_ids"]) == 3
    for text in ("héllo wörld", "中文 😀", "x" * 30):
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert max(tok.get_vocab().values()) < cfg.vocab_size


def test_corpus_is_a_few_hundred_sentences() -> None:
    corpus = clip_corpus()
    assert 200 <= len(corpus) <= 2000
    assert corpus == clip_corpus()


def test_loads_as_clip_sf_embedder_offline(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from PIL import Image

    from umr.models.clip_sf import ClipScoreFusionEmbedder

    emb = ClipScoreFusionEmbedder(built)
    out = emb.encode([Item(text="a blue star"), Item(image=Image.new("RGB", (40, 300), "blue"))])
    assert out.shape == (2, 64) and np.isfinite(out).all()
    assert type(emb.image_processor).__name__ == "CLIPImageProcessor"  # slow, PIL-based: no torchvision
    pixels = emb.image_processor(images=[Image.new("RGB", (40, 300))], return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape) == (1, 3, 112, 112)
